"""Alignment accuracy: does attention point at the source word a gold alignment says?

For each output word that the gold alignment names, the word-level attention row (``merge_attention``:
source pieces summed, output pieces averaged) is taken, and the output word counts as a hit when its
strongest source word is one of its gold source words. The ``</s>`` column competes like a word, so
attention parked on the end of the source is a miss. Accuracy is hits over scored output words.

During training it is measured on the dev set with the gold target forced (teacher forcing), so the
output words are the gold ones whatever the model would have said.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from .data import make_batch
from .heads import last_layer_average
from .model import EncoderDecoder, evaluating
from .plots import merge_attention
from .tokenizer import BOS_ID, EOS_ID, Tokenizer
from .toy import Alignment


def alignment_hits(attention: np.ndarray, source_pieces: Sequence[str], target_pieces: Sequence[str],
                   gold: Alignment) -> tuple[int, int]:
    """(hits, scored output words) of one sentence; attention is piece-level [T, S], ``</s>`` rows and
    columns included. Gold indices name whitespace words (``</s>`` excluded); pairs beyond the
    sentence's words are ignored."""
    merged, source_words, target_words = merge_attention(np.asarray(attention), source_pieces, target_pieces)
    allowed: dict[int, set[int]] = {}
    for source, target in gold:
        if target < len(target_words) - 1 and source < len(source_words) - 1:
            allowed.setdefault(target, set()).add(source)
    hits = sum(int(merged[target].argmax()) in sources for target, sources in allowed.items())
    return hits, len(allowed)


def alignment_accuracy(counts: Sequence[tuple[int, int]]) -> float | None:
    """Share of hits over every scored word of ``counts`` [(hits, scored)]; None when nothing was scored."""
    scored = sum(total for _, total in counts)
    return sum(hits for hits, _ in counts) / scored if scored else None


@dataclasses.dataclass(frozen=True)
class AlignedPair:
    """A dev pair ready to score: ids and pieces of both sides (``</s>`` in the pieces only) and
    its gold alignment."""

    source_ids: list[int]
    target_ids: list[int]
    source_pieces: list[str]
    target_pieces: list[str]
    gold: Alignment


def aligned_pairs(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]], gold: Sequence[Alignment]
                  ) -> list[AlignedPair]:
    """Tokenise ``pairs`` once, for scoring at every validation."""
    sources = tokenizer.encode_batch([s for s, _ in pairs])
    targets = tokenizer.encode_batch([t for _, t in pairs])
    return [AlignedPair(s, t, tokenizer.pieces(s + [EOS_ID]), tokenizer.pieces(t + [EOS_ID]), g)
            for s, t, g in zip(sources, targets, gold)]


@torch.no_grad()
def forced_alignment_accuracy(model: EncoderDecoder, pairs: Sequence[AlignedPair], batch_size: int = 64) -> float | None:
    """Alignment accuracy of ``model`` on ``pairs`` with each gold target forced; None for a model
    without attention. Runs on the model's device, in eval mode, and leaves the mode as it was."""
    if not model.has_attention:
        return None
    with evaluating(model):
        return _alignment_accuracy(model, pairs, batch_size)


def _alignment_accuracy(model: EncoderDecoder, pairs: Sequence[AlignedPair], batch_size: int) -> float | None:
    device = next(model.parameters()).device
    counts = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        batch = make_batch([p.source_ids for p in chunk], [p.target_ids for p in chunk], BOS_ID).to(device)
        _, alphas = model(batch.source, batch.source_lengths, batch.target_in)
        if alphas.dim() == 5:  # a Transformer's every layer and head: the matrix it shows
            alphas = last_layer_average(alphas)
        for row, pair in enumerate(chunk):
            attention = alphas[row, :len(pair.target_pieces), :len(pair.source_pieces)].float().cpu().numpy()
            counts.append(alignment_hits(attention, pair.source_pieces, pair.target_pieces, pair.gold))
    return alignment_accuracy(counts)
