"""Parallel data uploaded by a person: read strictly, so that a bad file is refused with the line
that is wrong before any training starts.

Unlike ``data.read_pairs`` (which skips a few malformed lines of a large corpus), an upload must be
clean: UTF-8 text, one ``source<TAB>target`` per line (or two line-aligned files), no empty line or
side, the same number of columns on every line, within the stated limits.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Iterator, Sequence

MAX_UPLOAD_BYTES = 50 * 2**20  # per file as uploaded (compressed or not)
MAX_UNPACKED_BYTES = 50 * 2**20  # per file once unpacked
MAX_LINE_BYTES = 10_000  # one sentence pair: far above any real one
MAX_UPLOAD_LINES = 1_000_000
MIN_PAIRS = 100
LIMITS_TEXT = (f"UTF-8 text, at most {MAX_UPLOAD_BYTES // 2**20} MB (also unpacked) and {MAX_UPLOAD_LINES:,} lines "
               f"of at most {MAX_LINE_BYTES:,} bytes per file, "
               f"at least {MIN_PAIRS} pairs; one TSV (source<TAB>target) or two line-aligned files; .gz accepted")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its line break) of a UTF-8 file, gzip-compressed when it ends in
    .gz. Read a bounded line at a time and decompressed as it is read, so that a small .gz that
    unpacks to gigabytes (or one endless line) is refused as soon as a limit is passed, with the
    memory of one line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name}: no such file")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise ValueError(f"{path.name}: larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    with raw as reader:
        read, number = 0, 0
        try:
            while line := reader.readline(MAX_LINE_BYTES + 2):  # room for the line break
                number += 1
                read += len(line)
                text = line.rstrip(b"\r\n")
                if len(text) > MAX_LINE_BYTES:
                    raise ValueError(f"{path.name}, line {number}: longer than {MAX_LINE_BYTES:,} bytes")
                if number > MAX_UPLOAD_LINES:
                    raise ValueError(f"{path.name}: more than {MAX_UPLOAD_LINES:,} lines")
                if read > MAX_UNPACKED_BYTES:
                    raise ValueError(f"{path.name}: more than {MAX_UNPACKED_BYTES // 2**20} MB unpacked")
                try:
                    yield number, text.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"{path.name}, line {number}: not UTF-8 text") from None
        except (OSError, EOFError, zlib.error) as error:  # a corrupt .gz
            raise ValueError(f"{path.name}: cannot be read ({error})") from None


def _tsv_pairs(path: Path) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    columns_seen = None
    for number, line in _lines(path):
        where = f"{Path(path).name}, line {number}"
        if not line.strip():
            raise ValueError(f"{where}: empty line")
        columns = line.split("\t")
        if len(columns) < 2:
            raise ValueError(f"{where}: no tab; each line must be source<TAB>target")
        if columns_seen is not None and len(columns) != columns_seen:
            raise ValueError(f"{where}: {len(columns)} columns where the lines before have {columns_seen}")
        columns_seen = len(columns)
        source, target = columns[0].strip(), columns[1].strip()
        if not source or not target:
            raise ValueError(f"{where}: the {'source' if not source else 'target'} is empty")
        pairs.append((source, target))
    return pairs


def _aligned_pairs(source_path: Path, target_path: Path) -> list[tuple[str, str]]:
    sources, targets = list(_lines(source_path)), list(_lines(target_path))
    if len(sources) != len(targets):
        raise ValueError(f"{Path(source_path).name} has {len(sources):,} lines and {Path(target_path).name} "
                         f"{len(targets):,}: two files must be line-aligned")
    for (number, source), (_, target) in zip(sources, targets):
        for text, path in ((source, source_path), (target, target_path)):
            if not text.strip():
                raise ValueError(f"{Path(path).name}, line {number}: empty line")
    return [(source.strip(), target.strip()) for (_, source), (_, target) in zip(sources, targets)]


def read_upload(paths: Sequence[Path], min_pairs: int = MIN_PAIRS) -> list[tuple[str, str]]:
    """The pairs of one TSV file or two line-aligned files; ValueError naming the file and line
    that is wrong, or saying why the data cannot be used."""
    if len(paths) not in (1, 2):
        raise ValueError(f"upload one TSV file or two line-aligned files, not {len(paths)}")
    pairs = _tsv_pairs(paths[0]) if len(paths) == 1 else _aligned_pairs(paths[0], paths[1])
    if len(pairs) < min_pairs:
        raise ValueError(f"only {len(pairs)} pairs; at least {min_pairs} are needed to train")
    return pairs
