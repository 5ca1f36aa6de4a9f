"""Logins for the explorer and the REST API: ``user:password`` lines of a file and/or one from
an environment variable value (``S2S_AUTH``); and API keys, as LibreTranslate's clients send them
(``api_key``), one per line of a file and/or comma-separated in a variable (``S2S_API_KEYS``)."""

from __future__ import annotations

import secrets
from pathlib import Path

MIN_KEY_CHARS = 16  # a key short enough to guess is refused when it is read


def _lines(path: str | Path | None) -> list[str]:
    if not path:
        return []
    if not Path(path).is_file():
        raise SystemExit(f"error: no such file: {path}")
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.strip().startswith("#")]


def read_logins(path: str | Path | None, variable: str | None) -> list[tuple[str, str]] | None:
    """``user:password`` pairs from a file (one per line) and/or a variable's value; None for none."""
    lines = _lines(path) + ([variable] if variable else [])
    logins = [tuple(line.strip().split(":", 1)) for line in lines if line.strip()]
    bad = [pair[0] for pair in logins if len(pair) != 2 or not all(pair)]
    if bad:
        raise SystemExit(f"error: a login must be user:password, got {bad[0]!r}")
    return logins or None  # type: ignore[return-value]


def read_api_keys(path: str | Path | None, variable: str | None) -> list[str] | None:
    """API keys from a file (one per line) and/or a variable (comma-separated); None for none."""
    keys = _lines(path) + [key.strip() for key in (variable or "").split(",") if key.strip()]
    short = [key for key in keys if len(key) < MIN_KEY_CHARS]
    if short:
        raise SystemExit(f"error: an API key must have at least {MIN_KEY_CHARS} characters "
                         f"(`python -c 'import secrets; print(secrets.token_urlsafe(24))'` makes one)")
    return keys or None


def is_login(user: str, password: str, logins: list[tuple[str, str]] | None) -> bool:
    """Whether ``user``/``password`` is one of ``logins`` (compared in constant time)."""
    return any(secrets.compare_digest(user, u) & secrets.compare_digest(password, p) for u, p in logins or [])


def is_api_key(key: object, keys: list[str] | None) -> bool:
    """Whether ``key`` is one of ``keys`` (compared in constant time)."""
    return isinstance(key, str) and any(secrets.compare_digest(key.encode(), k.encode()) for k in keys or [])
