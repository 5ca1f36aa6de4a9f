"""Sentencepiece tokenisation: text -> pieces -> ids and back.

One *joint* unigram model covers source and target. The choice is deliberate:
- names, numbers and punctuation that are copied from source to target get the same ids
  on both sides, which the attention can learn to copy;
- it allows tying the source, target and output embeddings (``ModelConfig.tie_embeddings``),
  which cuts the parameter count of a small model by a third;
- a checkpoint needs a single ``spm.model`` file.
``byte_fallback`` is on, so any Unicode (emoji, scripts unseen in training) encodes to byte
pieces rather than to an unknown token, and encoding never fails.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece as spm

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
EOS_PIECE = "</s>"
WORD_START = "\u2581"  # sentencepiece's word-boundary mark
BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class Tokenizer:
    """Wraps a sentencepiece model with the project's fixed special ids."""

    def __init__(self, model_proto: bytes, source: str = "spm.model") -> None:
        self.processor = spm.SentencePieceProcessor()
        try:
            self.processor.LoadFromSerializedProto(model_proto)
        except Exception as error:  # sentencepiece raises plain RuntimeError/OSError
            raise ValueError(f"corrupt sentencepiece model {source}: {error}") from error
        self.model_proto = model_proto
        if (self.processor.pad_id(), self.processor.unk_id(),
                self.processor.bos_id(), self.processor.eos_id()) != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(f"{source}: special ids must be pad=0 unk=1 bos=2 eos=3")

    @classmethod
    def load(cls, path: Path) -> "Tokenizer":
        try:
            return cls(Path(path).read_bytes(), source=str(path))
        except FileNotFoundError:
            raise FileNotFoundError(f"missing file: {path}") from None

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.model_proto)

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int) -> "Tokenizer":
        """Train a joint unigram model on ``sentences`` (source and target text together).

        With ``hard_vocab_limit`` off, a corpus too small for ``vocab_size`` gets fewer pieces;
        a ``vocab_size`` below what byte fallback needs (256 bytes + every character) is raised.
        """
        text = [line for line in sentences if line.strip()]
        if not text:
            raise ValueError("cannot train a tokenizer on empty data")
        size = vocab_size
        while True:
            buffer = io.BytesIO()
            try:
                spm.SentencePieceTrainer.Train(
                    sentence_iterator=iter(text), model_writer=buffer, vocab_size=size,
                    model_type="unigram", character_coverage=1.0, byte_fallback=True,
                    pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
                    normalization_rule_name="nmt_nfkc", num_threads=2, minloglevel=2,
                    hard_vocab_limit=False,
                )
                return cls(buffer.getvalue())
            except RuntimeError as error:
                # Byte fallback needs 256 byte pieces plus every character seen: grow to that.
                required = re.search(r"(\d+) vs (\d+)", str(error))
                if "required_chars" not in str(error) or required is None or size > int(required.group(2)):
                    raise
                size = int(required.group(2)) + 16

    @property
    def vocab_size(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without </s>."""
        return self.processor.encode(text, out_type=int)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts, out_type=int, num_threads=2)

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """Readable piece of each id (</s> for the end of sentence)."""
        return [EOS_PIECE if i == EOS_ID else self.processor.id_to_piece(int(i)) for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        """Detokenised text of ``ids``; special ids are dropped."""
        return self.processor.decode([int(i) for i in ids if int(i) > EOS_ID])


# Sentence punctuation: a piece made only of these is a word of its own ("café," is two words).
PUNCTUATION = set('.,!?;:…"«»()[]{}¡¿“”')


def _is_punctuation(piece: str) -> bool:
    label = piece.replace(WORD_START, "")
    return bool(label) and all(character in PUNCTUATION for character in label)


def merge_pieces(pieces: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Group pieces into words, the one rule every view uses (the server sends it to the page as
    each hypothesis's ``words``). Returns (word, piece indices) pairs.

    A new word starts at a piece beginning with ▁ (unless the word so far is only a bare ▁, which
    joins the piece after it: "▁" + "à" is the word "à"), at sentence punctuation (a word of its
    own), after it, and at </s> (a word of its own). Byte-fallback pieces are joined back into
    their UTF-8 characters, so an emoji split into four byte pieces reads as the emoji.
    """
    groups: list[tuple[list[str], list[int]]] = []
    for index, piece in enumerate(pieces):
        previous = groups[-1][0] if groups else None
        bare_start = previous is not None and "".join(previous) == WORD_START
        starts = (previous is None or piece == EOS_PIECE or previous[-1] == EOS_PIECE
                  or (piece.startswith(WORD_START) and not bare_start)
                  or _is_punctuation(piece) or (_is_punctuation(previous[-1]) and not bare_start))
        if starts:
            groups.append(([], []))
        groups[-1][0].append(piece)
        groups[-1][1].append(index)
    for position in range(len(groups) - 1, 0, -1):  # a bare ▁ left alone (before </s>) joins the word before
        if "".join(groups[position][0]) == WORD_START:
            word_pieces, indices = groups.pop(position)
            groups[position - 1][0].extend(word_pieces)
            groups[position - 1][1].extend(indices)
    return [(_join_word(word_pieces), indices) for word_pieces, indices in groups]


def word_spans(pieces: Sequence[str]) -> list[dict[str, object]]:
    """The words of ``pieces`` as JSON: ``{"text": word, "pieces": [piece indices]}`` each."""
    return [{"text": word, "pieces": indices} for word, indices in merge_pieces(pieces)]


def _join_word(pieces: list[str]) -> str:
    raw = bytearray()
    for piece in pieces:
        match = BYTE_PIECE.fullmatch(piece)
        raw += bytes([int(match.group(1), 16)]) if match else piece.encode("utf-8")
    return raw.decode("utf-8", errors="replace").replace(WORD_START, " ").strip() or WORD_START
