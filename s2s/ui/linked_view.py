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
import logging
import uuid
from typing import Any, Callable

import gradio as gr

from ..admission import Busy
from ..neighbours import DEFAULT_NEIGHBOURS
from ..service import RequestError, Service, settings_from
from ..translator import Translator
from . import ASSETS

LOG = logging.getLogger(__name__)
# The browser code, one file per view around one selection state (lv_core.js), joined in this order.
VIEW_FILES = ("lv_core.js", "lv_words.js", "lv_heatmap.js", "lv_heads.js", "lv_tree.js", "lv_neighbours.js",
              "lv_answer.js", "linked_view.js")


def paragraph(result: dict[str, Any], shown: int) -> list[dict[str, Any]] | None:
    """The whole translation of a text of several sentences, sentence by sentence (``source``,
    ``text`` of the best output, ``shown``), for the page to show above the sentence it explains;
    None for one sentence."""
    if len(result["sentences"]) < 2:
        return None
    return [{"source": sentence["source"], "text": sentence["hypotheses"][0]["text"], "shown": index == shown}
            for index, sentence in enumerate(result["sentences"])]


def head_info(translator: Translator) -> dict[str, Any] | None:
    """What the page needs to draw a Transformer's heads: layer and head counts, and each head's
    importance from the model's card (BLEU lost without it, by KIND.LAYER.HEAD; {} when not
    measured); None for an RNN."""
    config = translator.model.config
    if config.arch != "transformer":
        return None
    table = translator.metrics.get("head_importance") or {}
    return {"encoder_layers": config.encoder_layers, "decoder_layers": config.decoder_layers,
            "heads": config.attention_heads, "split": table.get("split"),
            "importance": {name: row["loss"] for name, row in table.get("heads", {}).items()}}


def view_value(model: str, sentence_index: int, columns: list[tuple[str, dict[str, Any]]],
               selected: int, heads: dict[str, Any] | None = None) -> str:
    """What the browser draws, as JSON text ("" = nothing): the sentence ``sentence_index`` of each
    (label, result) column, with the hypotheses (pieces, probabilities, attention, alternatives)
    and the beam trace; for a Transformer (``heads``, see ``head_info``) every head's attention and
    each column's encoder and decoder self-attention. As an object, Gradio's frontend deep-cloned it and wrapped it in reactive
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
        "heads": heads,
        "columns": [{"label": label, "settings": result["settings"], "prefix": sentence["prefix"],
                     "hypotheses": sentence["hypotheses"], "trace": sentence["trace"],
                     "encoder_attention": sentence["encoder_attention"],
                     "decoder_attention": sentence["decoder_attention"]}
                    for (label, sentence), (_, result) in zip(sentences, columns)],
    }, ensure_ascii=False)


def answer(function: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], str]:
    """A server function from ``function(request) -> answer``: the answer as JSON text; a bad
    request or a busy server as ``{"error": message}``; anything else is a bug, logged with its
    traceback and answered with an id to find it in the log."""

    def server_function(request: Any) -> str:
        try:
            if not isinstance(request, dict):
                raise RequestError("the request must be an object")
            result = function(request)
        except (RequestError, Busy) as error:
            result = {"error": str(error)}
        except Exception:  # noqa: BLE001  (logged, and the page says so)
            incident = uuid.uuid4().hex[:8]
            LOG.exception("linked view %s failed (error %s)", function.__name__, incident)
            result = {"error": f"Something went wrong on the server (error {incident}); it is in the server's log."}
        return json.dumps(result, ensure_ascii=False)

    server_function.__name__ = function.__name__  # the page calls it by this name
    server_function.__doc__ = function.__doc__
    return server_function


def server_functions(service: Service) -> list[Callable[[Any], str]]:
    """The page's server functions (they bypass Gradio's queue; the service admits each model call)."""

    @answer
    def redecode(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``ids`` (the output being edited),
        ``position`` (piece index), ``settings`` (the column's decoding settings), and either
        ``replacement`` (a piece id or a word to put there), ``steer`` (source piece indices the
        decoder looks at there, weight spread evenly) or ``weights`` (one per source piece, e.g.
        its own attention scaled); with ``steer`` or ``weights`` the output before it is kept.
        Answers ``{"sentence": ..., "note": ...}``."""
        settings = settings_from(request.get("settings"))
        ids = request.get("ids")
        if ids is None:
            raise RequestError("ids must be the list of the output's piece ids")
        if "steer" in request or "weights" in request:
            sentence = service.override(request.get("model"), request.get("source"), settings, ids=ids,
                                        step=request.get("position"), weights=request.get("weights"),
                                        steer=request.get("steer"))
            return {"sentence": sentence}
        sentence = service.redecode(request.get("model"), request.get("source"), settings, ids=ids,
                                    position=request.get("position"), replacement=request.get("replacement"))
        return {"sentence": sentence, "note": sentence.pop("note")}

    @answer
    def saliency(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``ids`` (the output) and ``method``."""
        ids = request.get("ids")
        if ids is None:
            raise RequestError("ids must be the output's piece ids")
        return {"saliency": service.saliency(request.get("model"), request.get("source"), ids=ids,
                                             method=request.get("method", "integrated_gradients"))}

    @answer
    def score(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``target`` (the person's translation) and
        ``settings`` (those of the column it is compared with)."""
        return {"sentence": service.score(request.get("model"), request.get("source"), request.get("target"),
                                          settings_from(request.get("settings")), beside_best=False)}

    @answer
    def switch_heads(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``settings`` (the column's) and
        ``heads_off`` ("KIND.LAYER.HEAD, ..."): the sentence decoded again with those heads
        switched off. Answers ``{"sentence": ...}``."""
        settings = request.get("settings")
        if not isinstance(settings, dict):
            raise RequestError("settings must be an object of decoding settings")
        settings = settings_from({**settings, "heads_off": request.get("heads_off"), "split_sentences": False})
        (result,) = service.translate_all([(request.get("model"), request.get("source"), settings)])
        if result["message"]:
            raise RequestError(result["message"])
        return {"sentence": result["sentences"][0]}

    @answer
    def neighbours(request: dict[str, Any]) -> dict[str, Any]:
        """request: ``model``, ``source`` (one sentence), ``ids`` (the output), ``side`` ("source"
        or "output"), ``position`` (piece index) and ``k``. Answers ``{"neighbours": ...}``."""
        ids = request.get("ids")
        if ids is None:
            raise RequestError("ids must be the output's piece ids")
        return {"neighbours": service.neighbours(request.get("model"), request.get("source"), ids=ids,
                                                 side=request.get("side"), position=request.get("position"),
                                                 k=request.get("k", DEFAULT_NEIGHBOURS))}

    return [redecode, saliency, score, switch_heads, neighbours]


def linked_view(service: Service) -> gr.HTML:
    """The component: an empty container that the browser code fills from its value, with the
    server functions over ``service``."""
    return gr.HTML(
        value=None, elem_id="linked-view",
        html_template='<div class="lv" role="region" aria-label="Linked view of the translation"></div>',
        css_template=(ASSETS / "linked_view.css").read_text(encoding="utf-8"),
        js_on_load="\n".join((ASSETS / name).read_text(encoding="utf-8") for name in VIEW_FILES),
        server_functions=server_functions(service),
        apply_default_css=False,
    )
