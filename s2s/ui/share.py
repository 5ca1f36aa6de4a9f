"""Shareable links: the page's address carries the model, the text, the reference and every
decoding setting that differs from its default (``?model=en-fr&text=...&beam_size=8``); opening
such a link fills the page and translates. ``assets/share_link.js`` writes the address."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Mapping

from ..translator import MAX_INPUT_CHARS, DecodeSettings, make_settings
from . import ASSETS

PAGE_FIELDS = ("model", "text", "reference")  # then every DecodeSettings field, by name


def restored_values(query: Mapping[str, str], models: list[str]) -> dict[str, Any]:
    """The page's values named in a link's query. A value that does not parse or validate is left
    out (the control keeps its default): a link is typed by hand as often as copied."""
    values: dict[str, Any] = {}
    if query.get("model") in models:
        values["model"] = query["model"]
    for name in ("text", "reference"):
        if isinstance(query.get(name), str):
            values[name] = query[name][:MAX_INPUT_CHARS]
    hints = typing.get_type_hints(DecodeSettings)
    parsed: dict[str, Any] = {}
    for field in dataclasses.fields(DecodeSettings):
        if query.get(field.name) is not None:
            try:
                parsed[field.name] = _parse(query[field.name], hints[field.name])
            except (ValueError, TypeError):
                continue
    # Each setting is kept if it validates beside those kept before it, in the order of
    # DecodeSettings, whose checks only look back (nbest=16 needs beam_size=16, or sampling).
    settings: dict[str, Any] = {}
    for name, value in parsed.items():
        try:
            make_settings(**settings, **{name: value})
        except (ValueError, TypeError):
            continue
        settings[name] = value
    return values | settings


def _parse(raw: str, kind: Any) -> Any:
    if kind is bool:
        if raw not in ("true", "false"):
            raise ValueError(raw)
        return raw == "true"
    if kind is str:
        return raw
    if kind == (int | None):
        return None if raw == "" else int(raw)
    return kind(raw)


def share_script(names: list[str]) -> str:
    """The browser function behind "Copy link": it receives the values of ``names`` in order."""
    defaults = {field.name: field.default for field in dataclasses.fields(DecodeSettings)}
    script = (ASSETS / "share_link.js").read_text(encoding="utf-8")
    return script.replace("__NAMES__", json.dumps(names)).replace("__DEFAULTS__", json.dumps(defaults))
