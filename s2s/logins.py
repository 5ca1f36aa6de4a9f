"""Logins for the explorer and the REST API: ``user:password`` lines of a file and/or one from
an environment variable value (``S2S_AUTH``)."""

from __future__ import annotations

from pathlib import Path


def read_logins(path: str | Path | None, variable: str | None) -> list[tuple[str, str]] | None:
    """``user:password`` pairs from a file (one per line) and/or a variable's value; None for none."""
    lines = (Path(path).read_text(encoding="utf-8").splitlines() if path else []) + ([variable] if variable else [])
    logins = [tuple(line.strip().split(":", 1)) for line in lines if line.strip() and not line.startswith("#")]
    bad = [pair[0] for pair in logins if len(pair) != 2 or not all(pair)]
    if bad:
        raise SystemExit(f"error: a login must be user:password, got {bad[0]!r}")
    return logins or None  # type: ignore[return-value]
