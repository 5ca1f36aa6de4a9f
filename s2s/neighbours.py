"""The nearest training pieces of one piece of a translation, by the model's own hidden states.

A query is a sentence, an output (piece ids) and one piece of either side. Its state — the
encoder's state at a source piece, or the decoder's state that predicted an output piece — is
looked up in the model's neighbour index (``s2s.neighbour_index``): the quantised search proposes
``CANDIDATES_PER_NEIGHBOUR x k`` training pieces, the model recomputes their exact states from the
stored text (the sources encoded in one batch; for output pieces, one decoder row per candidate,
teacher-forced up to its piece, an RNN's packed), and the k most similar by cosine are returned
with their pair, the matching word highlighted on its side and the word its attention aligns it
with on the other (stored in the index at build time), and, for output pieces, whether the
training translation says the same word there. A 2-D principal-component map of the query and
its neighbours comes with them.
"""

from __future__ import annotations

from typing import Any

import torch

from .model import EncoderDecoder
from .neighbour_index import CANDIDATES_PER_NEIGHBOUR, SIDES, NeighbourIndex, encoded, last_read, pair_ids, unit
from .tokenizer import EOS_ID, Tokenizer, merge_pieces

DEFAULT_NEIGHBOURS = 10
MAX_NEIGHBOURS = 50


def word_at(pieces: list[str], position: int) -> tuple[list[str], int]:
    """The words of ``pieces`` and the number of the word that holds piece ``position``."""
    words = merge_pieces(pieces)
    number = next(n for n, (_, indices) in enumerate(words) if position in indices)
    return [word for word, _ in words], number


def check_query(side: Any, position: Any, k: Any, source_length: int, output_ids: list[int]) -> None:
    """Refuse a query that names no indexed piece: ``side`` in SIDES, ``position`` a source piece
    (not </s>) or an output piece (not </s>), 1 <= ``k`` <= MAX_NEIGHBOURS."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_NEIGHBOURS:
        raise ValueError(f"k must be a whole number in [1, {MAX_NEIGHBOURS}], got {k!r}")
    if side == "source":
        valid = isinstance(position, int) and not isinstance(position, bool) and 0 <= position < source_length
        what = f"a source piece in [0, {source_length - 1}] (</s> has no neighbours)"
    else:
        valid = isinstance(position, int) and not isinstance(position, bool) and \
            0 <= position < len(output_ids) and output_ids[position] != EOS_ID
        what = f"an output piece in [0, {len(output_ids) - 1}], not </s>"
    if not valid:
        raise ValueError(f"position must be {what}, got {position!r}")


def pca_map(vectors: torch.Tensor) -> dict[str, Any]:
    """The first two principal components of unit vectors [n, D]: x and y per row (the query
    first) and the share of variance each axis explains."""
    centred = vectors - vectors.mean(0, keepdim=True)
    left, values, _ = torch.linalg.svd(centred, full_matrices=False)
    coordinates = left[:, :2] * values[:2]
    if coordinates.size(1) < 2:
        coordinates = torch.nn.functional.pad(coordinates, (0, 2 - coordinates.size(1)))
    variance = values.square()
    explained = (variance[:2] / variance.sum().clamp(min=1e-12)).tolist()
    return {"x": [round(v, 5) for v in coordinates[:, 0].tolist()],
            "y": [round(v, 5) for v in coordinates[:, 1].tolist()],
            "explained": [round(v, 4) for v in explained + [0.0] * (2 - len(explained))]}


def states_at(model: EncoderDecoder, side: str, sources: list[list[int]], targets: list[list[int]],
              rows: list[int], positions: list[int]) -> torch.Tensor:
    """The state the index holds for piece ``positions[n]`` of ``side`` of pair ``rows[n]`` (source
    ids with </s>, target ids without) [N, D]: the sources encoded in one batch (packed: padding
    costs an RNN nothing), then the encoder's state of each source piece, or one decoder row per
    target piece, run up to it (what comes after it does not change its state)."""
    memory, first_state = encoded(model, sources)
    index = torch.tensor(rows)
    if side == "source":
        return memory.states[index, torch.tensor(positions)]
    return last_read(model, memory.select(index), first_state.select(index),
                     [targets[row][:position] for row, position in zip(rows, positions)])


def query_state(model: EncoderDecoder, source_ids: list[int], target: list[int], side: str, position: int
                ) -> torch.Tensor:
    """``states_at`` of one pair's piece ``position`` [D]."""
    return states_at(model, side, [source_ids], [target], [0], [position])[0]


def find_neighbours(model: EncoderDecoder, tokenizer: Tokenizer, index: NeighbourIndex, source_ids: list[int],
                    output_ids: list[int], side: str, position: int, k: int) -> dict[str, Any]:
    """The k training pieces nearest piece ``position`` of ``side`` (a query ``check_query``
    accepts); source_ids end in </s>, output_ids may. Returns ``side``, ``position``, ``word`` (the
    word holding that piece), ``k``, ``neighbours`` (nearest first, each: ``sentence`` (its number
    in the index), ``position`` (the matching piece), ``similarity`` (exact cosine), ``source`` and
    ``target`` (the pair's text), ``source_words`` and ``target_words`` with ``source_word`` and
    ``target_word`` (the matching word and the word the attention aligns it with, None without
    attention), ``same_word`` (output side: the training translation says the same word there)),
    ``same_word`` (how many do; None for the source side), ``map`` (``x``, ``y`` [k + 1], the query
    first, ``explained``) and ``index`` (its summary)."""
    query = unit(query_state(model, source_ids, [i for i in output_ids if i != EOS_ID], side, position))
    candidates = index.search(side, query, k * CANDIDATES_PER_NEIGHBOUR)
    query_words, query_word = word_at(tokenizer.pieces(source_ids if side == "source" else output_ids), position)
    sentences = sorted({candidate.sentence for candidate in candidates})
    if not sentences:
        return {"side": side, "position": position, "word": query_words[query_word], "k": k, "neighbours": [],
                "same_word": None, "map": pca_map(query[None]), "index": index.summary()}
    row_of = {sentence: row for row, sentence in enumerate(sentences)}
    pairs = [index.pairs[sentence] for sentence in sentences]
    sources, targets = pair_ids(tokenizer, pairs)
    limits = [len(ids) - 1 for ids in sources] if side == "source" else [len(ids) for ids in targets]
    candidates = [c for c in candidates if c.position < limits[row_of[c.sentence]]]  # a changed tokenizer
    vectors = unit(states_at(model, side, sources, targets, [row_of[c.sentence] for c in candidates],
                             [c.position for c in candidates])) if candidates \
        else torch.zeros(0, query.numel())
    similarity = vectors @ query
    order = similarity.argsort(descending=True)[:k].tolist()

    neighbours = []
    for number in order:
        candidate, row = candidates[number], row_of[candidates[number].sentence]
        source_pieces = tokenizer.pieces(sources[row])
        target_pieces = tokenizer.pieces(targets[row] + [EOS_ID])
        other_side = len(targets[row]) if side == "source" else len(sources[row]) - 1  # real pieces
        aligned = candidate.aligned if candidate.aligned is not None and candidate.aligned < other_side \
            else None  # None without attention, or past the pair's end under a changed tokenizer
        source_position, target_position = (candidate.position, aligned) if side == "source" \
            else (aligned, candidate.position)
        source_words, source_word = word_at(source_pieces, source_position) if source_position is not None \
            else ([word for word, _ in merge_pieces(source_pieces)], None)
        target_words, target_word = word_at(target_pieces, target_position) if target_position is not None \
            else ([word for word, _ in merge_pieces(target_pieces)], None)
        same = None
        if side == "output":
            same = target_words[target_word].casefold() == query_words[query_word].casefold()
        neighbours.append({
            "sentence": candidate.sentence, "position": candidate.position,
            "similarity": round(float(similarity[number]), 4), "source": pairs[row][0], "target": pairs[row][1],
            "source_words": source_words, "source_word": source_word,
            "target_words": target_words, "target_word": target_word, "same_word": same,
        })
    same_count = sum(bool(n["same_word"]) for n in neighbours) if side == "output" else None
    return {"side": side, "position": position, "word": query_words[query_word], "k": k,
            "neighbours": neighbours, "same_word": same_count,
            "map": pca_map(torch.cat([query[None], vectors[order]])), "index": index.summary()}
