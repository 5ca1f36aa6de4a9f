"""Is an input like what the model was trained on? Two signals, both cheap and data-free at
translation time:

- **length**: a sentence with more pieces than 99% of the training sources (the training run
  stores the percentiles in ``metrics.json`` as ``training_profile``);
- **rare words**: sentencepiece keeps frequent words whole, so a word it splits into
  ``RARE_WORD_PIECES`` or more word pieces, or spells in bytes (characters never seen), was rare
  or absent in training. On eng-fra.dev, 0.5% of the sentences have ``RARE_WORD_SHARE`` of
  such words; German input to en-fr, or a physics sentence, have over half.

The notes are advice for the reader, not errors: the model still translates.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .tokenizer import Tokenizer, merge_pieces

RARE_WORD_PIECES = 3
RARE_WORD_SHARE = 0.4
MIN_RARE_WORDS = 2
LENGTH_PERCENTILES = (50, 95, 99)


def length_profile(source_lengths: Sequence[int]) -> dict[str, Any]:
    """Percentiles of the training sources' lengths in pieces (for ``metrics.json``)."""
    lengths = np.asarray(source_lengths)
    return {"sentences": int(lengths.size),
            "source_pieces": {f"p{q}": int(np.percentile(lengths, q)) for q in LENGTH_PERCENTILES}
            | {"max": int(lengths.max())}}


def rare_words(tokenizer: Tokenizer, ids: Sequence[int]) -> tuple[list[str], int]:
    """The words of ``ids`` that the vocabulary splits into many pieces or spells in bytes, and
    the number of words."""
    pieces = tokenizer.pieces(ids)
    words = merge_pieces(pieces)
    rare = [word for word, indices in words
            if sum(any(c.isalnum() for c in pieces[i]) for i in indices) >= RARE_WORD_PIECES
            or any(tokenizer.processor.is_byte(int(ids[i])) for i in indices)]
    return rare, len(words)


def unfamiliar_notes(tokenizer: Tokenizer, ids: Sequence[int], profile: dict[str, Any] | None,
                     which: str) -> list[str]:
    """Notes for one source sentence (ids without </s>) named ``which`` ("The input", "Sentence 2")."""
    notes = []
    longest = (profile or {}).get("source_pieces", {}).get("p99")
    if longest and len(ids) > longest:
        notes.append(f"{which} has {len(ids)} pieces, more than 99% of the training sentences ({longest} or "
                     "fewer): far from what the model learned, so expect words to be dropped.")
    rare, count = rare_words(tokenizer, ids)
    if len(rare) >= MIN_RARE_WORDS and len(rare) >= RARE_WORD_SHARE * count:
        shown = ", ".join(rare[:5]) + ("…" if len(rare) > 5 else "")
        notes.append(f"{which}: {len(rare)} of {count} words were rare or unseen in training ({shown}); "
                     "the translation is likely to be poor.")
    return notes
