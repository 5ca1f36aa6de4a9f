"""The explorer's settings plumbing and its named API endpoints beyond ``/translate``: the
what-if questions of the linked view, each usable with a model name and a text (its first
sentence is asked about) and defaults for everything else.

- ``/alternatives``: the best output with the model's top pieces at each position;
- ``/redecode``: put a word (default: the runner-up piece) at a position and decode the rest;
- ``/override``: set where the decoder looks at one step (default: evenly over the source);
- ``/saliency``: gradient attributions of the best output beside its attention;
- ``/score``: the model's score of a person's translation;
- ``/neighbours``: the training pieces nearest one piece of the best output (or of the source)
  by the model's hidden states.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import typing
from typing import Any, Callable, Iterator

import gradio as gr

from ..admission import Busy
from ..neighbours import DEFAULT_NEIGHBOURS
from ..saliency import DEFAULT_STEPS
from ..service import RequestError, Service, whole
from ..service import settings_from as service_settings
from ..translator import DecodeSettings


@contextlib.contextmanager
def as_gradio_errors() -> Iterator[None]:
    """The service's answers to a bad request or a busy server, as the message Gradio shows."""
    try:
        yield
    except (RequestError, Busy) as error:
        raise gr.Error(str(error)) from None


def settings_from(values: dict[str, Any]) -> DecodeSettings:
    """Validated settings from values by setting name (UI or API); errors become a gr.Error."""
    with as_gradio_errors():
        return service_settings(values)


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
    """The what-if endpoints: thin adapters over ``service`` (its errors become gr.Error)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def alternatives(self, model: str, text: str, **settings: Any) -> dict:
        """The best output of the text's first sentence, with the model's top pieces at each
        position (``alternatives`` setting: how many)."""
        with as_gradio_errors():
            return self.service.alternatives(model, text, service_settings(settings))

    def redecode(self, model: str, text: str, position: int = 1, replacement: str = "", **settings: Any) -> dict:
        """Put ``replacement`` (a word; empty = the model's runner-up piece there) at output
        ``position`` of the best output and decode the rest; returns the sentence's result."""
        with as_gradio_errors():
            answer = self.service.redecode(model, text, service_settings(settings), position=position,
                                           replacement=replacement)
        return {key: value for key, value in answer.items() if key != "note" or value}

    def override(self, model: str, text: str, step: int = 0, weights: list[float] | None = None,
                 **settings: Any) -> dict:
        """At output ``step`` of the best output, the decoder looks where ``weights`` (one per
        source piece, </s> included; default: evenly over all) say; the words before are kept and
        the rest decoded again. Returns the sentence's result with ``steered``."""
        with as_gradio_errors():
            return self.service.override(model, text, service_settings(settings), step=step, weights=weights)

    def saliency(self, model: str, text: str, method: str = "integrated_gradients", steps: int = DEFAULT_STEPS,
                 **settings: Any) -> dict:
        """Which source pieces each piece of the best output depends on (Captum), beside its
        attention; see ``Translator.saliency``."""
        with as_gradio_errors():
            return self.service.saliency(model, text, method=method, steps=whole(steps),
                                         settings=service_settings(settings))

    def score(self, model: str, text: str, target: str = "", **settings: Any) -> dict:
        """The model's score of ``target``, a person's translation of the text's first sentence,
        beside the model's own best output (``best``)."""
        with as_gradio_errors():
            return self.service.score(model, text, target, service_settings(settings))

    def neighbours(self, model: str, text: str, side: str = "output", position: int = 0,
                   k: int = DEFAULT_NEIGHBOURS, **settings: Any) -> dict:
        """The ``k`` training sentences whose hidden state at a piece is nearest that of piece
        ``position`` of the best output (``side`` "output") or of the source ("source"); see
        ``Translator.neighbours``."""
        with as_gradio_errors():
            return self.service.neighbours(model, text, side=side, position=whole(position), k=whole(k),
                                           settings=service_settings(settings))

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
        gr.api(signature_from_settings(self.neighbours, (_parameter("side", str, "output"), _parameter("position", int, 0),
                                                         _parameter("k", int, DEFAULT_NEIGHBOURS))),
               api_name="neighbours")
