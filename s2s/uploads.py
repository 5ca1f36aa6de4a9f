"""Parallel data uploaded by a person: read strictly, so that a bad file is refused with the line
that is wrong before any training starts.

Unlike ``data.read_pairs`` (which skips a few malformed lines of a large corpus), an upload must be
clean: UTF-8 text, one ``source<TAB>target`` per line (or two line-aligned files), no empty line or
side, the same number of columns on every line, within the stated limits.

What is uploaded is kept only briefly (``UploadGuard``): a training job deletes its upload once
read, the rest is deleted after ``UPLOAD_TTL_SECONDS``, and uploads are refused while the folder
holds ``UPLOAD_QUOTA_BYTES``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import stat
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterator, Sequence

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


UPLOAD_TTL_SECONDS = 15 * 60  # an upload not read by then (a training job reads it at once) is deleted
UPLOAD_QUOTA_BYTES = 1024 * 2**20  # the upload folder's size beyond which new uploads are refused
SWEEP_EVERY_SECONDS = 30.0
KEPT_FOLDERS_PREFIX = "s2s-"  # the explorer's own folders there (exports) bound themselves


def _upload_files(folder: Path) -> list[tuple[Path, os.stat_result]]:
    """Every file under ``folder`` that a person uploaded (not the explorer's own folders)."""
    files = []
    for path in Path(folder).rglob("*"):
        if path.relative_to(folder).parts[0].startswith(KEPT_FOLDERS_PREFIX):
            continue
        with contextlib.suppress(OSError):
            status = path.stat()
            if stat.S_ISREG(status.st_mode):
                files.append((path, status))
    return files


def sweep_uploads(folder: Path, max_age: float = UPLOAD_TTL_SECONDS, quota: int = UPLOAD_QUOTA_BYTES) -> int:
    """Delete the uploads in ``folder`` older than ``max_age`` seconds, then the oldest until the
    rest fit ``quota`` bytes, and the folders left empty; returns the bytes the rest take."""
    files = sorted(_upload_files(folder), key=lambda item: item[1].st_mtime)
    now, total = time.time(), sum(status.st_size for _, status in files)
    for path, status in files:
        if now - status.st_mtime <= max_age and total <= quota:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            total -= status.st_size
            with contextlib.suppress(OSError):  # Gradio puts each upload in a folder of its own
                path.parent.rmdir()
    return total


class UploadGuard:
    """ASGI middleware for a server that takes uploads into ``folder`` (Gradio's upload route): a
    new upload is refused with 507 while the folder holds ``quota`` bytes (each upload counted by
    its Content-Length until the next sweep measures the folder again), and a sweeper thread
    deletes uploads older than ``max_age`` seconds every ``SWEEP_EVERY_SECONDS`` (``sweep_uploads``).
    So nobody can fill the disk, and a server left up for a term keeps only recent uploads."""

    def __init__(self, app: Any, folder: Path, path: str = "/gradio_api/upload", max_age: float = UPLOAD_TTL_SECONDS,
                 quota: int = UPLOAD_QUOTA_BYTES) -> None:
        self.app, self.folder, self.path, self.max_age, self.quota = app, Path(folder), path, max_age, quota
        self.held = 0
        self._stop = threading.Event()
        threading.Thread(target=self._sweep, name="s2s-upload-sweeper", daemon=True).start()

    def _sweep(self) -> None:
        while True:
            self.held = sweep_uploads(self.folder, self.max_age, self.quota) if self.folder.is_dir() else 0
            if self._stop.wait(SWEEP_EVERY_SECONDS):
                return

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == self.path and scope.get("method") == "POST":
            if self.held >= self.quota:
                body = json.dumps({"detail": "The server's upload space is full: try again in a few minutes."}).encode()
                await send({"type": "http.response.start", "status": 507,
                            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"60")]})
                await send({"type": "http.response.body", "body": body})
                return
            length = dict(scope.get("headers", [])).get(b"content-length", b"")
            self.held += int(length) if length.isdigit() else MAX_UPLOAD_BYTES  # counted until the next sweep
        await self.app(scope, receive, send)
