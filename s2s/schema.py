"""Typed shapes of the JSON the library returns (``Translator.translate`` and the what-if
questions), for the REST API's validation and its OpenAPI schema.

They describe the dicts exactly as the library builds them: a result validated by these classes
dumps back to the same JSON (tested), so a caller of the Python API, the Gradio endpoints or the
REST API reads one shape. Fields a question adds to a sentence (``steered``, ``note``) are kept.
The request side is generated from ``s2s.DecodeSettings`` (``settings_fields``): one definition of
every decoding setting with its default.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .translator import SETTING_RANGES, STRATEGIES, DecodeSettings


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class Word(Shape):
    text: str
    pieces: list[int]


class Alternative(Shape):
    id: int
    piece: str
    logprob: float


class Hypothesis(Shape):
    text: str
    pieces: list[str]
    words: list[Word]
    ids: list[int]
    token_logprobs: list[float]
    score: float
    normalized_score: float
    attention: Optional[list[list[float]]]
    head_attention: Optional[list[list[list[list[float]]]]]  # a Transformer's [layers][heads][T][S]
    finished: bool
    parent_slots: list[int]
    alternatives: list[list[Alternative]]
    forced: int


class Kept(Shape):
    slot: int
    token: int
    piece: str
    parent: int
    score: float
    starts_word: bool


class Ended(Shape):
    parent: int
    piece: str
    score: float
    normalized_score: float
    starts_word: bool


class Pruned(Shape):
    token: int
    piece: str
    parent: int
    score: float
    starts_word: bool


class BeamStep(Shape):
    step: int
    alive: list[Kept]
    finished: list[Ended]
    pruned: list[Pruned]


class Sentence(Shape):
    source: str
    source_pieces: list[str]
    source_words: list[Word]
    hypotheses: list[Hypothesis]
    trace: Optional[list[BeamStep]]
    prefix: str
    encoder_attention: Optional[list[list[list[list[float]]]]]  # a Transformer's [layers][heads][S][S]
    decoder_attention: Optional[list[list[list[list[float]]]]]  # a Transformer's [layers][heads][T][T]


class Result(Shape):
    model: str
    source: str
    text: str
    sentences: list[Sentence]
    settings: dict[str, Any]
    warnings: list[str]
    message: Optional[str]
    time_ms: float


class Alternatives(Shape):
    source: str
    text: str
    pieces: list[str]
    ids: list[int]
    token_logprobs: list[float]
    alternatives: list[list[Alternative]]


class Saliency(Shape):
    method: str
    steps: int
    source_pieces: list[str]
    pieces: list[str]
    relevance: list[list[float]]
    signed: list[list[float]]
    attention: Optional[list[list[float]]]
    agreement: Optional[float]
    rank_correlation: Optional[list[float]]
    convergence: Optional[list[float]]


class Neighbour(Shape):
    sentence: int
    position: int
    similarity: float
    source: str
    target: str
    source_words: list[str]
    source_word: Optional[int]
    target_words: list[str]
    target_word: Optional[int]
    same_word: Optional[bool]


class NeighbourMap(Shape):
    x: list[float]
    y: list[float]
    explained: list[float]


class Neighbours(Shape):
    side: str
    position: int
    word: str
    k: int
    neighbours: list[Neighbour]
    same_word: Optional[int]
    map: NeighbourMap
    index: dict[str, Any]


class Scored(Sentence):
    best: Optional[Hypothesis] = None


def settings_fields() -> dict[str, tuple[Any, Any]]:
    """Every ``DecodeSettings`` field as a pydantic field definition (type, Field with its default
    and, from ``SETTING_RANGES`` and ``STRATEGIES``, the range or choices the server enforces), so
    the OpenAPI schema states them."""
    hints = typing.get_type_hints(DecodeSettings)
    fields: dict[str, tuple[Any, Any]] = {}
    for field in dataclasses.fields(DecodeSettings):
        kind, limits = hints[field.name], {}
        if field.name == "strategy":
            kind = Literal[STRATEGIES]  # type: ignore[valid-type]
        elif field.name in SETTING_RANGES:
            low, high, _ = SETTING_RANGES[field.name]
            limits = {"ge": low, "le": high}
        fields[field.name] = (kind, Field(field.default, **limits))
    return fields
