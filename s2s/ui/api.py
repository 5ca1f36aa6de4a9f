"""The explorer's settings plumbing and its named API endpoints beyond ``/translate``: the
what-if questions of the linked view, each usable with a model name and a text (its first
sentence is asked about) and defaults for everything else.

- ``/alternatives``: the best output with the model's top pieces at each position;
- ``/redecode``: put a word (default: the runner-up piece) at a position and decode the rest;
- ``/override``: set where the decoder looks at one step (default: evenly over the source);
- ``/saliency``: gradient attributions of the best output beside its attention;
- ``/score``: the model's score of a person's translation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import typing
from typing import Any, Callable, Iterator

import gradio as gr

from ..admission import Busy, Gate
from ..saliency import DEFAULT_MEMORY_BUDGET, DEFAULT_STEPS
from ..translator import DecodeSettings, Translator, make_settings, without_control_characters


@contextlib.contextmanager
def admitted(gate: Gate, kind: str) -> Iterator[None]:
    """``gate.admit(kind)`` for a Gradio handler: a busy server is a gr.Error that says so."""
    try:
        with gate.admit(kind):
            yield
    except Busy as busy:
        raise gr.Error(str(busy)) from None


def whole(value: Any) -> Any:
    """Sliders and number boxes send floats: 5.0 -> 5."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def settings_from(values: dict[str, Any]) -> DecodeSettings:
    """Validated settings from values by setting name (UI or API); errors become a gr.Error."""
    values = {name: whole(value) for name, value in values.items()}
    if values.get("seed") == "":
        values["seed"] = None
    if values.get("prefix") is None:
        values["prefix"] = ""
    try:
        return make_settings(**values)
    except ValueError as error:
        raise gr.Error(f"Invalid setting: {error}") from None


def signature_from_settings(function: Callable[..., Any], extra: tuple[inspect.Parameter, ...] = ()) -> Any:
    """Give ``function(model, text, *extra, **settings)`` the explicit signature of DecodeSettings
    (after ``extra``), so the API page and gradio_client list every parameter with its type and
    default."""
    hints = typing.get_type_hints(DecodeSettings)
    parameters = [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
                  inspect.Parameter("text", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str), *extra]
    parameters += [inspect.Parameter(field.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=field.default,
                                     annotation=hints[field.name]) for field in dataclasses.fields(DecodeSettings)]
    signature = inspect.Signature(parameters, return_annotation=dict)

    def api(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        return function(values.pop("model"), values.pop("text"), **values)

    api.__name__, api.__doc__ = function.__name__, function.__doc__
    api.__signature__ = signature  # type: ignore[attr-defined]
    api.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": dict}
    return api


def _parameter(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


class WhatIf:
    """The what-if endpoints, over ``translator_for(name)`` (a loaded model or a gr.Error), each
    admitted by ``gate``; saliency holds at most ``saliency_budget`` bytes at once."""

    def __init__(self, translator_for: Callable[[str], Translator], gate: Gate,
                 saliency_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.translator_for, self.gate, self.saliency_budget = translator_for, gate, saliency_budget

    def _best(self, model: str, text: str, settings: dict[str, Any]) -> tuple[Translator, dict, dict, DecodeSettings]:
        """The translator, the text's first sentence, its best hypothesis and the settings."""
        translator = self.translator_for(model)
        decode = settings_from(settings)
        with admitted(self.gate, "decode"):
            result = translator.translate(text if isinstance(text, str) else "", decode)
        if result["message"]:
            raise gr.Error(result["message"])
        sentence = result["sentences"][0]
        return translator, sentence, sentence["hypotheses"][0], decode

    def alternatives(self, model: str, text: str, **settings: Any) -> dict:
        """The best output of the text's first sentence, with the model's top pieces at each
        position (``alternatives`` setting: how many)."""
        _, sentence, best, _ = self._best(model, text, settings)
        return {"source": sentence["source"], "text": best["text"], "pieces": best["pieces"], "ids": best["ids"],
                "token_logprobs": best["token_logprobs"], "alternatives": best["alternatives"]}

    def redecode(self, model: str, text: str, position: int = 1, replacement: str = "", **settings: Any) -> dict:
        """Put ``replacement`` (a word; empty = the model's runner-up piece there) at output
        ``position`` of the best output and decode the rest; returns the sentence's result."""
        translator, sentence, best, decode = self._best(model, text, settings)
        try:
            if not replacement:
                options = best["alternatives"][position] if isinstance(position, int) and \
                    0 <= position < len(best["alternatives"]) else []
                if len(options) < 2:
                    raise ValueError("no runner-up piece is recorded there: give a replacement word or a valid "
                                     "position (and alternatives >= 2)")
                replacement = options[1]["id"]
            prefix = translator.edited_prefix(best["ids"], position, replacement)
            note = without_control_characters(replacement)[1] if isinstance(replacement, str) else None
            with admitted(self.gate, "decode"):
                return translator.redecode(sentence["source"], prefix, decode) | ({"note": note} if note else {})
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def override(self, model: str, text: str, step: int = 0, weights: list[float] | None = None,
                 **settings: Any) -> dict:
        """At output ``step`` of the best output, the decoder looks where ``weights`` (one per
        source piece, </s> included; default: evenly over all) say; the words before are kept and
        the rest decoded again. Returns the sentence's result with ``steered``."""
        translator, sentence, best, decode = self._best(model, text, settings)
        width = len(sentence["source_pieces"])
        try:
            if not isinstance(step, int) or not 0 <= step < len(best["ids"]):
                raise ValueError(f"step must be an output position in [0, {len(best['ids']) - 1}], got {step!r}")
            steering = {step: [1.0 / width] * width if weights is None else weights}
            with admitted(self.gate, "decode"):
                return translator.redecode(sentence["source"], best["ids"][:step], decode, steering)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def saliency(self, model: str, text: str, method: str = "integrated_gradients", steps: int = DEFAULT_STEPS,
                 **settings: Any) -> dict:
        """Which source pieces each piece of the best output depends on (Captum), beside its
        attention; see ``Translator.saliency``."""
        translator, sentence, best, _ = self._best(model, text, settings)
        try:
            with admitted(self.gate, "saliency"):
                return translator.saliency(sentence["source"], best["ids"], method, whole(steps), self.saliency_budget)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def score(self, model: str, text: str, target: str = "", **settings: Any) -> dict:
        """The model's score of ``target``, a person's translation of the text's first sentence,
        beside the model's own best output (``best``)."""
        translator, sentence, best, decode = self._best(model, text, settings)
        try:
            with admitted(self.gate, "decode"):
                scored = translator.score(sentence["source"], target, decode)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        return scored | {"best": best}

    def register(self) -> None:
        """Declare the endpoints on the Blocks being built."""
        gr.api(signature_from_settings(self.alternatives), api_name="alternatives")
        gr.api(signature_from_settings(self.redecode, (_parameter("position", int, 1),
                                                       _parameter("replacement", str, ""))), api_name="redecode")
        gr.api(signature_from_settings(self.override, (_parameter("step", int, 0),
                                                       _parameter("weights", typing.Optional[list[float]], None))),
               api_name="override")
        gr.api(signature_from_settings(self.saliency, (_parameter("method", str, "integrated_gradients"),
                                                       _parameter("steps", int, DEFAULT_STEPS))), api_name="saliency")
        gr.api(signature_from_settings(self.score, (_parameter("target", str, ""),)), api_name="score")
