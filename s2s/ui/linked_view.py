"""The linked view: one sentence's results drawn in the browser by ``assets/lv_*.js`` and
``assets/linked_view.js`` (one file per view, joined in the order of ``VIEW_FILES``).

The server sends the result once (``view_value``); hovering, selecting an n-best row, switching
between words and pieces, opening a word's alternatives and stepping through the output then
happen in the page with no server call. Only a re-decode runs the model again: the page calls
``redecode`` (a Gradio server function) with the position and the alternative or typed word, or
with the source pieces the decoder should look at there (attention steering); ``saliency``
computes gradient attributions of the hypothesis shown, to put beside its attention; ``score``
force-decodes a person's own translation.

Results go to the page as JSON text, which it parses once: Gradio's frontend deep-clones an object
value, and a server function's object answer goes through FastAPI's ``jsonable_encoder``; both
walk every number of the attention and alternatives, which cost more than the decoding.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import gradio as gr

from ..admission import Busy, Gate
from ..translator import make_settings, without_control_characters
from . import ASSETS

MAX_REPLACEMENT_CHARS = 100
# The browser code, one file per view around one selection state (lv_core.js), joined in this order.
VIEW_FILES = ("lv_core.js", "lv_words.js", "lv_heatmap.js", "lv_tree.js", "lv_answer.js", "linked_view.js")


def paragraph(result: dict[str, Any], shown: int) -> list[dict[str, Any]] | None:
    """The whole translation of a text of several sentences, sentence by sentence (``source``,
    ``text`` of the best output, ``shown``), for the page to show above the sentence it explains;
    None for one sentence."""
    if len(result["sentences"]) < 2:
        return None
    return [{"source": sentence["source"], "text": sentence["hypotheses"][0]["text"], "shown": index == shown}
            for index, sentence in enumerate(result["sentences"])]


def view_value(model: str, sentence_index: int, columns: list[tuple[str, dict[str, Any]]],
               selected: int) -> str:
    """What the browser draws, as JSON text ("" = nothing): the sentence ``sentence_index`` of each
    (label, result) column, with the hypotheses (pieces, probabilities, attention, alternatives)
    and the beam trace. As an object, Gradio's frontend deep-cloned it and wrapped it in reactive
    proxies: 207 + ~90 ms of the 630 ms a Translate click took for a 15-word sentence (Chromium
    profile)."""
    sentences = [(label, result["sentences"][sentence_index]) for label, result in columns
                 if sentence_index < len(result["sentences"])]
    if not sentences or not all(sentence["hypotheses"] for _, sentence in sentences):
        return ""
    first = sentences[0][1]
    return json.dumps({
        "model": model,
        "source": first["source"],
        "source_pieces": first["source_pieces"],
        "source_words": first["source_words"],
        "selected": selected,
        "paragraph": paragraph(columns[-1][1], sentence_index),
        "columns": [{"label": label, "settings": result["settings"], "prefix": sentence["prefix"],
                     "hypotheses": sentence["hypotheses"], "trace": sentence["trace"]}
                    for (label, sentence), (_, result) in zip(sentences, columns)],
    }, ensure_ascii=False)


def answer(function: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], str]:
    """A server function from ``function(request) -> answer``: the answer as JSON text, and a bad
    request (ValueError, TypeError, gr.Error) as ``{"error": message}``, never a crash."""

    def server_function(request: Any) -> str:
        try:
            if not isinstance(request, dict):
                raise ValueError("the request must be an object")
            result = function(request)
        except (ValueError, TypeError, gr.Error, Busy) as error:
            result = {"error": str(error)}
        return json.dumps(result, ensure_ascii=False)

    server_function.__name__ = function.__name__  # the page calls it by this name
    server_function.__doc__ = function.__doc__
    return server_function


def redecoder(translator_for: Callable[[str], Any], gate: Gate) -> Callable[[Any], str]:
    """The server function behind "pick an alternative / type a word": ``translator_for(name)``
    gives the loaded model; ``gate`` admits the decode."""

    @answer
    def redecode(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``ids`` (the output being edited),
        ``position`` (piece index), ``settings`` (the column's decoding settings), and either
        ``replacement`` (a piece id or a word to put there), ``steer`` (source piece indices the
        decoder looks at there, weight spread evenly) or ``weights`` (one per source piece, e.g.
        its own attention scaled); with ``steer`` or ``weights`` the output before it is kept.
        Answers ``{"sentence": ...}``."""
        replacement = request.get("replacement")
        if isinstance(replacement, str) and len(replacement) > MAX_REPLACEMENT_CHARS:
            raise ValueError(f"type at most {MAX_REPLACEMENT_CHARS} characters")
        settings = request.get("settings")
        if not isinstance(settings, dict):
            raise ValueError("settings must be an object of decoding settings")
        translator = translator_for(str(request.get("model")))
        ids = request.get("ids")
        if not isinstance(ids, list):
            raise ValueError("ids must be the list of the output's piece ids")
        position = request.get("position")
        steering = None
        if "steer" in request or "weights" in request:
            if not isinstance(position, int) or not 0 <= position < len(ids):
                raise ValueError(f"position must be an output position in [0, {len(ids) - 1}]")
            prefix = list(ids[:position])
            steering = {position: request["weights"] if "weights" in request else
                        even_weights(request["steer"], request.get("source_pieces"))}
        else:
            prefix = translator.edited_prefix(ids, position, replacement)
        note = without_control_characters(replacement)[1] if isinstance(replacement, str) else None
        with gate.admit("decode"):
            return {"sentence": translator.redecode(request.get("source"), prefix, make_settings(**settings), steering),
                    "note": note}

    return redecode


def saliency_server(translator_for: Callable[[str], Any], gate: Gate, budget: int) -> Callable[[Any], str]:
    """The server function behind "Saliency": attributions of one hypothesis (see
    ``Translator.saliency``), admitted by ``gate``, holding at most ``budget`` bytes at once."""

    @answer
    def saliency(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``ids`` (the output) and ``method``."""
        translator = translator_for(str(request.get("model")))
        with gate.admit("saliency"):
            return {"saliency": translator.saliency(request.get("source"), request.get("ids"),
                                                    request.get("method", "integrated_gradients"),
                                                    memory_budget=budget)}

    return saliency


def scorer(translator_for: Callable[[str], Any], gate: Gate) -> Callable[[Any], str]:
    """The server function behind "Score my translation" (see ``Translator.score``), admitted by
    ``gate``."""

    @answer
    def score(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``target`` (the person's translation) and
        ``settings`` (those of the column it is compared with)."""
        if not isinstance(request.get("settings"), dict):
            raise ValueError("the request must be an object with the column's settings")
        translator = translator_for(str(request.get("model")))
        target = request.get("target")
        if not isinstance(target, str):
            raise ValueError("target must be the translation to score, as text")
        with gate.admit("decode"):
            return {"sentence": translator.score(request.get("source"), target,
                                                 make_settings(**request["settings"]))}

    return score


def even_weights(pieces: Any, source_length: Any) -> list[float]:
    """Weights over ``source_length`` source pieces, spread evenly over the indices ``pieces``."""
    if not isinstance(source_length, int) or source_length < 1:
        raise ValueError("source_pieces must be the number of source pieces")
    if not isinstance(pieces, list) or not pieces or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < source_length for i in pieces):
        raise ValueError("click one or more source words to steer the attention to")
    return [1.0 / len(set(pieces)) if index in set(pieces) else 0.0 for index in range(source_length)]


def linked_view(translator_for: Callable[[str], Any], gate: Gate, saliency_budget: int) -> gr.HTML:
    """The component: an empty container that the browser code fills from its value. Its server
    functions bypass Gradio's queue, so ``gate`` admits each of their model calls."""
    return gr.HTML(
        value=None, elem_id="linked-view",
        html_template='<div class="lv" role="region" aria-label="Linked view of the translation"></div>',
        css_template=(ASSETS / "linked_view.css").read_text(encoding="utf-8"),
        js_on_load="\n".join((ASSETS / name).read_text(encoding="utf-8") for name in VIEW_FILES),
        server_functions=[redecoder(translator_for, gate), saliency_server(translator_for, gate, saliency_budget),
                          scorer(translator_for, gate)],
        apply_default_css=False,
    )
