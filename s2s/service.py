"""The questions a person or a program asks of the models, answered once for every door: the
page's events and server functions, the named Gradio endpoints, and the REST API (``s2s.rest``).

``Service`` holds the model catalog, the request batcher (concurrent translations decoded
together) and the admission gate (``s2s.admission``), and imports no web framework, so a
REST-only server uses it without Gradio. Each question validates its request once and raises
``RequestError`` (``UnknownModel`` for a model that is not there) for a bad one; ``Busy`` when the
server is at its limit; anything else is a bug, for the adapter to log. The adapters map them:
Gradio to ``gr.Error``, the page to ``{"error": ...}``, REST to HTTP 422 / 404 / 503.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
from pathlib import Path
from typing import Any, Hashable, Iterator

from .admission import Gate
from .batching import RequestBatcher
from .catalog import ModelCatalog
from .neighbours import DEFAULT_NEIGHBOURS
from .saliency import DEFAULT_MEMORY_BUDGET, DEFAULT_STEPS
from .translator import DecodeSettings, RequestCost, Translator, make_settings, without_control_characters

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "en-fr"
MAX_REPLACEMENT_CHARS = 100
MAX_TEXTS = 128  # texts in one request (each of at most MAX_SENTENCES sentences)
# Decoder row-steps one request may take (``RequestCost.work``, counted at the longest output
# allowed): about a minute of the 2-core host of 2026-12-08, where en-fr's batched beam search ran
# 18,000-21,000 of them a second (256 Tatoeba dev sentences at beam 5 and 16), so every request's
# time is bounded before it runs. 128 one-sentence texts at beam 5 take about 15,000.
MAX_REQUEST_WORK = 1_200_000


class RequestError(ValueError):
    """A request that cannot be answered as asked; its message says why, for the person asking."""


class UnknownModel(RequestError):
    """A model name that is not in the catalog (or a folder that fails to load)."""


class SettingError(RequestError):
    """A decoding setting out of range or unknown; ``field`` names it (None when it cannot)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Invalid setting: {message}")
        first = message.split(" ", 1)[0]
        self.field = first if first in {f.name for f in dataclasses.fields(DecodeSettings)} else None


@contextlib.contextmanager
def as_request_errors() -> Iterator[None]:
    """The library's ValueError (bad settings, ids, text) as the service's RequestError."""
    try:
        yield
    except RequestError:
        raise
    except ValueError as error:
        raise RequestError(str(error)) from None


def check_text_count(count: int) -> None:
    """Refuse a request of more than ``MAX_TEXTS`` texts, by name, before anything is read of them."""
    if count > MAX_TEXTS:
        raise RequestError(f"{count:,} texts in one request; at most {MAX_TEXTS} are translated at once: "
                           "send them in several requests")


def whole(value: Any) -> Any:
    """Sliders and number boxes send floats: 5.0 -> 5."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def settings_from(values: dict[str, Any] | None) -> DecodeSettings:
    """Validated settings from values by setting name (page, endpoint or REST body): floats that
    are whole numbers become integers, an empty seed is None."""
    if values is not None and not isinstance(values, dict):
        raise RequestError("settings must be an object of decoding settings")
    values = {name: whole(value) for name, value in (values or {}).items()}
    if values.get("seed") == "":
        values["seed"] = None
    if "prefix" in values and values["prefix"] is None:
        values["prefix"] = ""
    try:
        return make_settings(**values)
    except ValueError as error:
        raise SettingError(str(error)) from None


def _ids(value: Any, what: str = "ids") -> list[int]:
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise RequestError(f"{what} must be the list of the output's piece ids")
    return value


def _text(value: Any, what: str = "text") -> str:
    if not isinstance(value, str):
        raise RequestError(f"{what} must be text")
    return value


class RecentAnswers:
    """The answers to the last ``size`` distinct questions, by key (the least recently asked is
    dropped first); safe across threads. For answers that are costly and asked again as a person
    moves between views (saliency of the hypothesis shown)."""

    def __init__(self, size: int) -> None:
        self.size, self.lock, self.answers = size, threading.Lock(), collections.OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        with self.lock:
            if key in self.answers:
                self.answers.move_to_end(key)
                return self.answers[key]
            return None

    def put(self, key: Hashable, answer: Any) -> None:
        with self.lock:
            self.answers[key] = answer
            self.answers.move_to_end(key)
            while len(self.answers) > self.size:
                self.answers.popitem(last=False)


SALIENCY_CACHE_SIZE = 64  # saliency answers kept: a few KB each (two [T][S] matrices)


class Service:
    def __init__(self, catalog: ModelCatalog, batcher: RequestBatcher | None = None, gate: Gate | None = None,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.catalog, self.batcher, self.gate = catalog, batcher or RequestBatcher(), gate or Gate()
        self.set_memory_budget(memory_budget)
        self.saliency_answers = RecentAnswers(SALIENCY_CACHE_SIZE)

    def set_memory_budget(self, budget: int) -> None:
        """Bytes one search or saliency request may hold (every loaded model's searches too); the
        gate admits at least three such requests at once."""
        self.memory_budget = self.catalog.memory_budget = budget
        self.gate.memory_capacity = max(self.gate.memory_capacity, 3 * budget)

    @classmethod
    def from_environment(cls) -> "Service":
        """The models in ``$S2S_CHECKPOINTS`` (default: the project's ``checkpoints/``)."""
        return cls(ModelCatalog(Path(os.environ.get("S2S_CHECKPOINTS", ROOT / "checkpoints")), default=DEFAULT_MODEL))

    def translator(self, model: Any) -> Translator:
        """The loaded model; the catalog's error (which names the models there are) otherwise."""
        try:
            return self.catalog.get(model if isinstance(model, str) else repr(model))
        except ValueError as error:
            raise UnknownModel(str(error)) from None

    def models(self) -> list[dict[str, Any]]:
        """Every model's card summary (name, languages, title, data, scores)."""
        return [self.catalog.summary(name) for name in self.catalog.names()]

    # ------------------------------------------------------------------------ translation

    def translate_all(self, jobs: list[tuple[str, Any, DecodeSettings]], details: bool = True) -> list[dict[str, Any]]:
        """Translations of (model, text, settings), asked together so that they decode at the same
        time, and with concurrent requests (the batcher). The request's cost is known before it
        runs: at most ``MAX_TEXTS`` texts, ``MAX_REQUEST_WORK`` row-steps and the memory budget
        (``Translator.request_cost``), or a RequestError naming the limit; the gate charges its
        memory. ``details=False``: only what a text output needs (``Translator.translate_batch``)."""
        check_text_count(len(jobs))
        requests = [(self.translator(model), _text(text), settings) for model, text, settings in jobs]
        with as_request_errors():
            costs = [translator.request_cost([text], settings) for translator, text, settings in requests]
        total = sum(costs, RequestCost())
        if total.work > MAX_REQUEST_WORK:
            raise RequestError(f"This request's {total.sentences:,} sentences may take {total.work:,} decoder steps "
                               f"(rows x steps); at most {MAX_REQUEST_WORK:,} are taken per request: send fewer "
                               "texts, or lower the beam size, samples or maximum length")
        if total.memory > self.memory_budget:
            raise RequestError(f"This request's {total.sentences:,} sentences may hold {total.memory / 2**20:,.0f} MB, "
                               f"over this server's budget of {self.memory_budget / 2**20:,.0f} MB per request: send "
                               "fewer texts, or lower the beam size, samples or maximum length")
        with self.gate.admit("decode", total.memory), as_request_errors():
            return self.batcher.translate_all(requests, [cost.work for cost in costs], details)

    def translate(self, model: str, texts: list[str], settings: DecodeSettings, details: bool = True
                  ) -> list[dict[str, Any]]:
        """The results of several texts with one model and settings, in order."""
        return self.translate_all([(model, text, settings) for text in texts], details)

    def best(self, model: str, text: Any, settings: DecodeSettings) -> tuple[Translator, dict, dict]:
        """The translator, the text's first sentence and its best hypothesis; an empty-looking
        text gets the message empty text gets."""
        translator = self.translator(model)
        (result,) = self.translate_all([(model, text, settings)])
        if result["message"]:
            raise RequestError(result["message"])
        sentence = result["sentences"][0]
        return translator, sentence, sentence["hypotheses"][0]

    # ------------------------------------------------------------------------ what if

    def _admit_sentence(self, translator: Translator, source: str, settings: DecodeSettings) -> Any:
        """The gate's admission of one what-if question about ``source`` (one sentence), charged
        what decoding it under ``settings`` may hold."""
        cost = translator.request_cost([source], dataclasses.replace(settings, split_sentences=False))
        return self.gate.admit("decode", cost.memory)

    def alternatives(self, model: str, text: Any, settings: DecodeSettings) -> dict[str, Any]:
        """The best output of the text's first sentence, with the model's top pieces at each position."""
        _, sentence, best = self.best(model, text, settings)
        return {"source": sentence["source"], "text": best["text"], "pieces": best["pieces"], "ids": best["ids"],
                "token_logprobs": best["token_logprobs"], "alternatives": best["alternatives"]}

    def _output(self, model: str, source: Any, ids: Any, settings: DecodeSettings) -> tuple[Translator, str, list[int], dict]:
        """The sentence asked about and the output edited: ``ids`` as given, or (None) the best
        output of the source's first sentence."""
        if ids is None:
            translator, sentence, best = self.best(model, source, settings)
            return translator, sentence["source"], best["ids"], best
        return self.translator(model), _text(source, "source"), _ids(ids), {}

    def redecode(self, model: str, source: Any, settings: DecodeSettings, ids: Any = None, position: Any = 1,
                 replacement: Any = "") -> dict[str, Any]:
        """Put ``replacement`` (a piece id, a typed word, or "" for the model's runner-up piece
        there) at output ``position`` of ``ids`` (None: the best output) and decode the rest.
        Returns the sentence's result, with a ``note`` when control characters were removed."""
        translator, source, ids, best = self._output(model, source, ids, settings)
        if isinstance(replacement, str) and len(replacement) > MAX_REPLACEMENT_CHARS:
            raise RequestError(f"type at most {MAX_REPLACEMENT_CHARS} characters")
        with as_request_errors():
            if replacement == "":
                if not best:  # the model's pieces along the given output, read by force-decoding it
                    with self._admit_sentence(translator, source, settings):
                        best = translator.score(source, ids, settings)["hypotheses"][0]
                options = best["alternatives"][position] if isinstance(position, int) and \
                    0 <= position < len(best["alternatives"]) else []
                if len(options) < 2:
                    raise RequestError("no runner-up piece is recorded there: give a replacement word or a valid "
                                       "position (and alternatives >= 2)")
                replacement = options[1]["id"]
            prefix = translator.edited_prefix(ids, position, replacement)
            with self._admit_sentence(translator, source, settings):
                sentence = translator.redecode(source, prefix, settings)
        note = without_control_characters(replacement)[1] if isinstance(replacement, str) else None
        return sentence | {"note": note}

    def override(self, model: str, source: Any, settings: DecodeSettings, ids: Any = None, step: Any = 0,
                 weights: Any = None, steer: Any = None) -> dict[str, Any]:
        """At output ``step`` of ``ids`` (None: the best output) the decoder looks where ``weights``
        say (one per source piece, </s> included), or evenly over the source pieces ``steer``, or
        (neither) evenly over the whole source; the output before it is kept and the rest decoded
        again. Returns the sentence's result with ``steered``."""
        translator, source, ids, _ = self._output(model, source, ids, settings)
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < len(ids):
            raise RequestError(f"step must be an output position in [0, {len(ids) - 1}], got {step!r}")
        with as_request_errors():
            if weights is None:
                width = len(translator.source_pieces(source))
                weights = even_weights(steer if steer is not None else list(range(width)), width)
            with self._admit_sentence(translator, source, settings):
                return translator.redecode(source, ids[:step], settings, {step: weights})

    def saliency(self, model: str, source: Any, ids: Any = None, method: Any = "integrated_gradients",
                 steps: Any = DEFAULT_STEPS, settings: DecodeSettings | None = None) -> dict[str, Any]:
        """Which source pieces each piece of ``ids`` (None: the best output) depends on, beside its
        attention (see ``Translator.saliency``). The last answers are kept: asking again for the
        same sentence, output and method costs nothing."""
        translator, source, ids, _ = self._output(model, source, ids, settings or make_settings())
        key = (model, translator.weights_sha256 or id(translator), source, tuple(ids), method, steps) \
            if isinstance(model, str) and isinstance(method, str) and isinstance(steps, int) else None
        cached = self.saliency_answers.get(key) if key else None
        if cached is not None:
            return cached
        with as_request_errors():
            translator.check_saliency(source, ids, method, steps)  # refused before it waits for a slot
        with as_request_errors(), self.gate.admit("saliency", self.memory_budget):  # what its chunks hold at most
            answer = translator.saliency(source, ids, method, steps, self.memory_budget)
        if key:
            self.saliency_answers.put(key, answer)
        return answer

    def neighbours(self, model: str, source: Any, ids: Any = None, side: Any = "output", position: Any = 0,
                   k: Any = DEFAULT_NEIGHBOURS, settings: DecodeSettings | None = None) -> dict[str, Any]:
        """The ``k`` training pieces nearest piece ``position`` of the source (``side`` "source")
        or of ``ids`` (None: the best output) by the model's hidden states (see
        ``Translator.neighbours``); a missing or stale index is a RequestError that says how to
        build it."""
        translator, source, ids, _ = self._output(model, source, ids, settings or make_settings())
        with as_request_errors(), self._admit_sentence(translator, source, make_settings(strategy="greedy")):
            return translator.neighbours(source, ids, side, whole(position), whole(k))

    def score(self, model: str, source: Any, target: Any, settings: DecodeSettings,
              beside_best: bool = True) -> dict[str, Any]:
        """The model's score of ``target``, a person's translation of the source (its first
        sentence when ``beside_best``, which also returns the model's own best output as ``best``;
        else the source as one sentence, as the page asks about the sentence it shows)."""
        if beside_best:
            translator, sentence, best = self.best(model, source, settings)
            source = sentence["source"]
        else:
            translator, source, best = self.translator(model), _text(source, "source"), None
        with as_request_errors(), self._admit_sentence(translator, source, settings):
            scored = translator.score(source, _text(target, "target"), settings)
        return scored | ({"best": best} if beside_best else {})


def even_weights(pieces: Any, source_length: int) -> list[float]:
    """Weights over ``source_length`` source pieces, spread evenly over the indices ``pieces``."""
    if not isinstance(pieces, list) or not pieces or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < source_length for i in pieces):
        raise RequestError("click one or more source words to steer the attention to")
    chosen = set(pieces)
    return [1.0 / len(chosen) if index in chosen else 0.0 for index in range(source_length)]
