"""Parallel data: reading, multi-reference grouping, and length-bucketed batches.

Accepted inputs
- one TSV file: ``source<TAB>target[<TAB>anything...]``, further columns ignored;
- two line-aligned files: source file and target file.
Files ending in ``.gz`` are read compressed. A malformed line (no tab, an empty side) is
skipped and reported with its file name and line number through ``on_skip``; reading stops
with a ``ValueError`` if more than ``max_bad_fraction`` of the lines are malformed, since such a
file is most likely not in the expected format.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import random
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from .tokenizer import EOS_ID, PAD_ID


def open_text(path: Path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing file: {path}")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def _warn_skip(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def stream_pairs(paths: Sequence[Path], on_skip: Callable[[str], None] = _warn_skip) -> Iterator[tuple[str, str]]:
    """(source, target) pairs from one TSV file or two line-aligned files, one at a time; a line
    without two non-empty sides is passed to ``on_skip`` and left out."""
    if len(paths) not in (1, 2):
        raise ValueError(f"expected one TSV file or two line-aligned files, got {len(paths)}")
    if len(paths) == 1:
        with open_text(paths[0]) as lines:
            for number, line in enumerate(lines, start=1):
                columns = line.rstrip("\r\n").split("\t")
                if len(columns) < 2 or not columns[0].strip() or not columns[1].strip():
                    on_skip(f"{paths[0]}:{number}: skipped malformed line (need source<TAB>target)")
                    continue
                yield columns[0].strip(), columns[1].strip()
    else:
        with open_text(paths[0]) as sources, open_text(paths[1]) as targets:
            for number, (source, target) in enumerate(_zip_strict(sources, targets, paths), start=1):
                source, target = source.strip(), target.strip()
                if not source or not target:
                    on_skip(f"{paths[0]}|{paths[1]}:{number}: skipped line with an empty side")
                    continue
                yield source, target


def read_pairs(paths: Sequence[Path], on_skip: Callable[[str], None] = _warn_skip,
               max_bad_fraction: float = 0.1) -> list[tuple[str, str]]:
    """Every pair of ``stream_pairs``; more than ``max_bad_fraction`` malformed lines is an error."""
    bad = 0

    def skip(message: str) -> None:
        nonlocal bad
        bad += 1
        on_skip(message)

    pairs = list(stream_pairs(paths, skip))
    total = len(pairs) + bad
    if total == 0:
        raise ValueError(f"no data in {', '.join(map(str, paths))}")
    if bad / total > max_bad_fraction:
        raise ValueError(f"{', '.join(map(str, paths))}: {bad} of {total} lines are malformed; "
                         "expected source<TAB>target or two line-aligned files")
    return pairs


def _zip_strict(sources, targets, paths) -> Iterator[tuple[str, str]]:
    for source, target in itertools.zip_longest(sources, targets):
        if source is None or target is None:
            raise ValueError(f"{paths[0]} and {paths[1]} have different numbers of lines")
        yield source, target


def group_references(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    """Distinct sources in first-seen order, each with all of its targets as references."""
    references: dict[str, list[str]] = {}
    for source, target in pairs:
        references.setdefault(source, []).append(target)
    return list(references), list(references.values())


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Turn per-sentence reference lists into sacrebleu's streams (None where a sentence has fewer)."""
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


@dataclasses.dataclass
class Batch:
    """A padded batch. ``source`` [B, S] ends with </s>; ``target_in`` [B, T] starts with <s>;
    ``target_out`` [B, T] ends with </s>; padding is PAD_ID."""

    source: torch.Tensor
    source_lengths: torch.Tensor  # [B]
    target_in: torch.Tensor
    target_out: torch.Tensor

    @property
    def target_tokens(self) -> int:
        return int((self.target_out != PAD_ID).sum())

    def to(self, device: torch.device) -> "Batch":
        """The batch on ``device`` (itself when it is already there)."""
        return Batch(self.source.to(device), self.source_lengths.to(device), self.target_in.to(device),
                     self.target_out.to(device))


def pad(sequences: Sequence[Sequence[int]], value: int = PAD_ID) -> torch.Tensor:
    """[N, max_len] long tensor, right-padded with ``value``."""
    width = max(len(s) for s in sequences)
    out = torch.full((len(sequences), width), value, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return out


def make_batch(sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], bos_id: int) -> Batch:
    """Batch from id lists without specials: adds </s> to sources, <s>/</s> to targets."""
    source = [list(s) + [EOS_ID] for s in sources]
    return Batch(
        source=pad(source),
        source_lengths=torch.tensor([len(s) for s in source]),
        target_in=pad([[bos_id] + list(t) for t in targets]),
        target_out=pad([list(t) + [EOS_ID] for t in targets]),
    )


def bucket_batches(lengths: Sequence[tuple[int, int]], batch_tokens: int, seed: int,
                   max_sentences: int = 512) -> list[list[int]]:
    """Group example indices into batches of similar length, shuffled with ``seed``.

    Examples are sorted by (target, source) length with a little random jitter, cut into
    batches holding at most ``batch_tokens`` padded target tokens, and the batch order is
    shuffled. The same seed gives the same batches, which makes resuming exact.
    """
    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i][1], lengths[i][0], rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    widest = 0
    for index in order:
        width = max(widest, lengths[index][1] + 1)
        if current and (width * (len(current) + 1) > batch_tokens or len(current) >= max_sentences):
            batches.append(current)
            current, width = [], lengths[index][1] + 1
        current.append(index)
        widest = width
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches
