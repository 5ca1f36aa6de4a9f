"""The explorer page, in three tabs. Explore: type a text, compare greedy with beam search (or
sampling), and look inside through the linked view (``linked_view.py``: probabilities, n-best,
attention, alternatives, re-decoding, steering, saliency, the beam tree, drawn in the browser),
scores against a reference, share links, and the classic Plotly views; a paragraph is translated
sentence by sentence and the views show the sentence picked. Compare two models: the same input
through two models side by side. Train your own: ``train_tab.py``.

A thin layer: translations and the what-if questions run through ``s2s.service`` (the catalog, the
request batcher and the admission gate, shared with the REST API); every figure is drawn
from the results they return. Decoding controls are built from ``DecodeSettings`` and read back
by name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ..batching import RequestBatcher
from ..evaluate import sentence_scores
from ..plots import attention_heatmap, beam_tree, empty_figure, piece_label
from ..saliency import DEFAULT_MEMORY_BUDGET
from ..service import Service
from ..toy import TASKS, generate
from ..translator import MAX_HEADS_OFF_CHARS, DecodeSettings
from . import ASSETS
from .api import WhatIf, as_gradio_errors, settings_from, signature_from_settings, whole
from .exports import ExportFolder
from .linked_view import head_info, linked_view, view_value
from .share import PAGE_FIELDS, restored_values, share_script
from .train_tab import build_train_tab
UI_MAX_BEAM = 16
UI_NBEST = 5  # the page lists the whole beam of 5 by default; the library returns 1
UI_ALTERNATIVES = 10  # the page shows ten alternatives per word; the library records 5
TOY_EXAMPLES = 6  # example inputs shown for a model trained on a toy task
STATE_TTL_SECONDS = 3600  # a page's last result is dropped an hour after its last use
PROBABILITY_BANDS = [(0.9, "p ≥ 0.9"), (0.5, "0.5 ≤ p < 0.9"), (0.2, "0.2 ≤ p < 0.5"), (0.0, "p < 0.2")]
BAND_COLORS = {"p ≥ 0.9": "#4caf50", "0.5 ≤ p < 0.9": "#cddc39", "0.2 ≤ p < 0.5": "#ff9800", "p < 0.2": "#f44336"}

service = Service.from_environment()  # the models, the batcher and the admission gate, for every door
exports = ExportFolder(parent=Path(get_upload_folder()))  # inside Gradio's cache: served, never copied
EXAMPLES: dict[str, list[str]] = json.loads((ASSETS / "examples.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- presentation helpers

def model_markdown(name: str | None) -> str:
    """The card summary shown beside the input: what the model is and what it was trained on."""
    if not name:
        return "No model found in `checkpoints/`."
    summary = service.catalog.summary(name)
    if "error" in summary:
        return f"**Cannot read this model's card:** {summary['error']}"
    lines = [f"**{summary['title']}**"]
    if summary["description"]:
        lines.append(summary["description"])
    trained_on = ", ".join(Path(path).name for path in summary["data"]) or "unknown data"
    longest = summary["training_profile"].get("source_pieces", {}).get("p99")
    lines.append(f"**Trained on** {trained_on}" + (f"; 99% of its training sentences have {longest} pieces or "
                                                   "fewer, so a much longer or unusual input gets a note."
                                                   if longest else "."))
    details = [f"attention: `{summary['attention']}`"]
    if summary["parameters"]:
        details.append(f"{summary['parameters'] / 1e6:.1f}M parameters")
    for split, rows in summary["evaluation"].items():
        best = max(rows, key=lambda r: r["bleu"])
        details.append(f"{split}: BLEU {best['bleu']} ({best['decoding']})")
    if not summary["evaluation"] and summary["dev"]:
        details.append(f"dev BLEU {summary['dev'].get('bleu')} ({summary['dev'].get('decoding')})")
    lines.append(" · ".join(details))
    return "\n\n".join(lines)


def example_samples(name: str | None) -> list[list[str]]:
    """The model's own examples (``assets/examples.json`` by model name), else those of its source
    language (English when there are none); for a model trained on a toy task, inputs of that task."""
    summary = service.catalog.summary(name) if name else {}
    if summary.get("toy_task") in TASKS:
        return [[pair.source] for pair in generate(summary["toy_task"], TOY_EXAMPLES, seed=3)]
    shown = EXAMPLES.get(name or "") or EXAMPLES.get(summary.get("source_language", "en")) or EXAMPLES["en"]
    return [[text] for text in shown]


def token_highlights(hypothesis: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(piece, probability band) for ``gr.HighlightedText``: unlikely tokens stand out."""
    if not hypothesis:
        return []
    highlights = []
    for piece, logprob in zip(hypothesis["pieces"], hypothesis["token_logprobs"]):
        probability = math.exp(logprob)
        band = next(label for floor, label in PROBABILITY_BANDS if probability >= floor)
        highlights.append((piece_label(piece).replace("\u2581", " "), band))
    return highlights


def score_line(hypothesis: dict[str, Any] | None) -> str:
    if not hypothesis:
        return ""
    count = len(hypothesis["ids"])
    return (f"log-prob **{hypothesis['score']:.3f}** · normalised **{hypothesis['normalized_score']:.3f}** · "
            f"{count} tokens · geometric mean p {math.exp(hypothesis['score'] / count):.2f}")


def nbest_rows(sentence: dict[str, Any] | None) -> list[list[Any]]:
    if not sentence:
        return []
    return [[rank, h["text"], round(h["score"], 3), round(h["normalized_score"], 3), len(h["ids"])]
            for rank, h in enumerate(sentence["hypotheses"], start=1)]


def reference_outputs(view: View) -> dict[str, str]:
    """What a reference is scored against: greedy's and the other strategy's whole output, and,
    for a one-sentence input, every n-best row."""
    outputs = {"greedy": view.greedy["text"], f"{view.label.lower()} (best)": view.second["text"]}
    if len(view.second["sentences"]) == 1:
        for rank, hypothesis in enumerate(view.second["sentences"][0]["hypotheses"][1:], start=2):
            outputs[f"{view.label.lower()} #{rank}"] = hypothesis["text"]
    return outputs


def reference_scores(reference: str, outputs: dict[str, str]) -> dict[str, dict[str, float]]:
    """Sentence BLEU and chrF (sacrebleu) of each non-empty output against the reference."""
    if not isinstance(reference, str) or not reference.strip():
        return {}
    return {label: sentence_scores(text, [reference.strip()]) for label, text in outputs.items() if text}


def reference_markdown(scores: dict[str, dict[str, float]]) -> str:
    if not scores:
        return "Add a reference translation to score the outputs (sentence BLEU and chrF, sacrebleu)."
    lines = ["| output | BLEU | chrF |", "| --- | --- | --- |"]
    lines += [f"| {label} | {row['bleu']:.1f} | {row['chrf']:.1f} |" for label, row in scores.items()]
    return "\n".join(lines)


def status_markdown(result: dict[str, Any]) -> str:
    lines = []
    if result.get("message"):
        lines.append(f"**Note:** {result['message']}")
    lines += [f"**Warning:** {warning}" for warning in result.get("warnings", [])]
    return "\n\n".join(lines)


def sentence_of(result: dict[str, Any] | None, index: int) -> dict[str, Any] | None:
    """Sentence ``index`` of a result (clamped), or None when it has none."""
    if not result or not result["sentences"]:
        return None
    return result["sentences"][min(max(0, index), len(result["sentences"]) - 1)]


def best_of(sentence: dict[str, Any] | None) -> dict[str, Any] | None:
    return sentence["hypotheses"][0] if sentence and sentence["hypotheses"] else None


AVERAGE_OF_HEADS = "avg"
# Settings the linked view sets per request (a steering edit's layer and head), not page controls.
LINKED_VIEW_SETTINGS = {"steer_layer", "steer_head"}


def head_choices(model: str) -> list[tuple[str, str]]:
    """A Transformer's heatmap choices as (label, "LAYER.HEAD") with HEAD "avg" for the average of
    the layer's heads, the last layer's average first (what ``attention`` holds); [] for an RNN."""
    info = head_info(service.translator(model)) if model in service.catalog.names() else None
    if not info:
        return []
    layers, heads = info["decoder_layers"], info["heads"]
    choices = [(f"layer {layers}, average of heads", f"{layers - 1}.{AVERAGE_OF_HEADS}")]
    for layer in range(layers):
        choices += [(f"layer {layer + 1}, head {head + 1}", f"{layer}.{head}") for head in range(heads)]
        choices += [(f"layer {layer + 1}, average of heads", f"{layer}.{AVERAGE_OF_HEADS}")] if layer < layers - 1 else []
    return choices


def shown_attention(hypothesis: dict[str, Any], head: str | None) -> Any:
    """The attention a heatmap shows: ``attention``, or for a Transformer the head ``head`` names
    ("LAYER.HEAD", see ``head_choices``) of ``head_attention``."""
    if not head or hypothesis.get("head_attention") is None:
        return hypothesis["attention"]
    layer_text, _, head_text = head.partition(".")
    layers = hypothesis["head_attention"]
    layer = layers[min(int(layer_text), len(layers) - 1)]
    if head_text == AVERAGE_OF_HEADS:
        return [[sum(column) / len(layer) for column in zip(*rows)] for rows in zip(*layer)]
    return layer[min(int(head_text), len(layer) - 1)]


def heatmap_for(sentence: dict[str, Any] | None, index: int, title: str, merge_words: bool, head: str | None = None):
    if not sentence or not sentence["hypotheses"]:
        return empty_figure("Nothing to show yet: type a sentence and press Translate.")
    hypothesis = sentence["hypotheses"][min(max(0, index), len(sentence["hypotheses"]) - 1)]
    return attention_heatmap(sentence["source_pieces"], hypothesis["pieces"], shown_attention(hypothesis, head),
                             title, merge_words)


def translate_all(jobs: list[tuple[str, Any, DecodeSettings]]) -> list[dict[str, Any]]:
    """Translations (model name, text, settings) through the service, asked together so that they
    decode at the same time (and with concurrent requests)."""
    with as_gradio_errors():
        return service.translate_all([(model, text if isinstance(text, str) else "", settings)
                                      for model, text, settings in jobs])


def translate(model: str, text: Any, settings: DecodeSettings) -> dict[str, Any]:
    """One translation through the service (decoded together with concurrent requests)."""
    return translate_all([(model, text, settings)])[0]


# ---------------------------------------------------------------- the page's state and views

@dataclasses.dataclass
class View:
    """What one page shows: the two results, the sentence picked and the n-best row picked."""

    model: str
    greedy: dict[str, Any]
    second: dict[str, Any]
    sentence: int = 0
    selected: int = 0

    @property
    def label(self) -> str:
        return "Beam search" if self.second["settings"]["strategy"] == "beam" else "Sampling"


class Page:
    """The components of the explorer, created inside ``build_app``'s Blocks."""

    def __init__(self) -> None:
        self.controls: dict[str, gr.components.Component] = {}

    def explore_values(self, model: str, text: str, reference: str = "", merge_words: bool = True,
                       classic: bool = False, **settings: Any) -> dict:
        """The Translate click's inputs as the page sends them: every control at its default but
        the ``settings`` named (for scripts and tests that call the handlers directly); ``classic``:
        whether the classic views' section is open."""
        values = {self.inputs["model"]: model, self.inputs["text"]: text, self.inputs["reference"]: reference,
                  self.inputs["merge_words"]: merge_words, self.inputs["classic"]: classic}
        return values | {component: settings.get(name, component.value) for name, component in self.controls.items()}

    def control(self, name: str, component: type, *args: Any, **kwargs: Any) -> gr.components.Component:
        """A decoding control for setting ``name``, its default taken from ``DecodeSettings``."""
        kwargs.setdefault("value", getattr(DecodeSettings(), name))
        self.controls[name] = component(*args, **kwargs)
        return self.controls[name]


def render(view: View, merge_words: bool, classic: bool, page: Page) -> dict:
    """Every output of the page for ``view``. The classic views (text boxes, token bands, the
    n-best table and the Plotly figures) are drawn only while their section is open (``classic``):
    drawing and sending them costs more than the linked view, which shows the same and more."""
    greedy_sentence, second_sentence = sentence_of(view.greedy, view.sentence), sentence_of(view.second, view.sentence)
    count = len(view.second["sentences"])
    choices = [f"{i + 1}. {textwrap.shorten(sentence['source'], 60, placeholder=' …')}"
               for i, sentence in enumerate(view.second["sentences"])]
    # Which strategy scored better is said in the linked view, for the sentence shown.
    verdict = f"Sentence {view.sentence + 1} of {count} below." if count > 1 else ""
    shown = {
        page.verdict: verdict, page.status: status_markdown(view.second),
        page.linked: view_value(view.model, view.sentence, [("Greedy", view.greedy), (view.label, view.second)],
                                view.selected, head_info(service.translator(view.model))),
        page.sentence: gr.Radio(choices=choices, value=choices[min(view.sentence, count - 1)] if choices else None,
                                visible=count > 1),
    }
    classic_views = [page.greedy_text, page.greedy_score, page.greedy_tokens, page.second_text, page.second_score,
                     page.second_tokens, page.nbest, page.greedy_heatmap, page.second_heatmap, page.tree]
    if not classic:
        return shown | {component: gr.skip() for component in classic_views}
    g = best_of(greedy_sentence)
    chosen = second_sentence["hypotheses"][view.selected] if second_sentence and second_sentence["hypotheses"] else None
    return shown | {
        page.greedy_text: view.greedy["text"], page.greedy_score: score_line(g), page.greedy_tokens: token_highlights(g),
        page.second_text: view.second["text"], page.second_score: score_line(chosen),
        page.second_tokens: token_highlights(chosen), page.nbest: nbest_rows(second_sentence),
        page.greedy_heatmap: heatmap_for(greedy_sentence, 0, "Greedy: attention", merge_words),
        page.second_heatmap: heatmap_for(second_sentence, view.selected,
                                         f"{view.label}: attention of hypothesis #{view.selected + 1}", merge_words),
        page.tree: beam_tree(second_sentence["trace"] if second_sentence else None,
                             second_sentence["hypotheses"] if second_sentence else [], "Beam search tree"),
    }


# ---------------------------------------------------------------- the public API

def translate_api(model: str, text: str, **settings: Any) -> dict:
    """Translate ``text`` with ``model``: every sentence with its hypotheses, scores, attention and
    beam trace. Settings are those of ``s2s.DecodeSettings``, with its defaults."""
    return translate(model, text, settings_from(settings))


def models_api() -> list[dict]:
    """Every model folder with its card summary."""
    return service.models()


def build_classic_views(page: "Page") -> gr.Accordion:
    """The closed section of the classic views (outputs as text, probability bands, the n-best
    table, the Plotly figures), its components set on ``page``; drawn only while it is open."""
    with gr.Accordion("Classic views: the outputs as text, the n-best table, and Plotly figures (attention with "
                      "coverage, the beam tree by slot) to export as PNG", open=False, elem_id="classic") as classic:
        with gr.Row():
            with gr.Column():
                page.greedy_text = gr.Textbox(label="Greedy", interactive=False, elem_id="greedy-output")
                page.greedy_score = gr.Markdown()
                page.greedy_tokens = gr.HighlightedText(label="Greedy tokens by probability",
                                                        color_map=BAND_COLORS, show_legend=True,
                                                        show_inline_category=False)
            with gr.Column():
                page.second_text = gr.Textbox(label="Beam search / sampling (best)", interactive=False,
                                              elem_id="beam-output")
                page.second_score = gr.Markdown()
                page.second_tokens = gr.HighlightedText(label="Selected hypothesis tokens by probability",
                                                        color_map=BAND_COLORS, show_legend=True,
                                                        show_inline_category=False)
        page.nbest = gr.Dataframe(headers=["#", "hypothesis", "log-prob", "normalised", "tokens"],
                                  datatype=["number", "str", "number", "number", "number"], interactive=False,
                                  label="n-best list: click a row to see its attention", elem_id="nbest")
        with gr.Row():
            # The figures carry their own titles; Gradio's label would cover them.
            page.greedy_heatmap = gr.Plot(label="Greedy attention", show_label=False, elem_id="greedy-heatmap")
            page.second_heatmap = gr.Plot(label="Selected hypothesis attention", show_label=False,
                                          elem_id="beam-heatmap")
        page.tree = gr.Plot(label="Beam tree", show_label=False, elem_id="beam-tree")
    return classic


def compare_models(model_a: str, model_b: str, source: str, beam_size: float, alpha: float, merge: bool,
                   head_a: str | None = None, head_b: str | None = None) -> list:
    """The same input through two models with beam search; outputs and attention side by side (a
    Transformer's: the layer and head picked for its side)."""
    settings = settings_from({"strategy": "beam", "beam_size": beam_size, "alpha": alpha})
    outputs: list[Any] = []
    results = translate_all([(name, source, settings) for name in (model_a, model_b)])
    for name, result, head in zip((model_a, model_b), results, (head_a, head_b)):
        best = best_of(sentence_of(result, 0))
        label = next((text for text, value in head_choices(name) if value == head), None)
        outputs += [result["text"] or status_markdown(result), score_line(best),
                    heatmap_for(sentence_of(result, 0), 0, f"{name}: attention" + (f" ({label})" if label else ""),
                                merge, head)]
    return outputs


def head_picker(model: str, **component: Any) -> gr.Dropdown:
    """The Compare tab's head picker for ``model`` (built, or as an event's update): its choices,
    shown only for a Transformer."""
    choices = head_choices(model)
    return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, visible=bool(choices), **component)


@dataclasses.dataclass
class CompareTab:
    """The "Compare two models" tab: two model pickers, the text (it follows the Explore tab's),
    a beam size, and each model's output, score line and attention."""

    model_a: gr.Dropdown
    model_b: gr.Dropdown
    heads: list[gr.Dropdown]
    text: gr.Textbox
    beam_size: gr.Slider
    button: gr.Button
    outputs: list[gr.components.Component]

    @classmethod
    def build(cls, names: list[str], first: str | None, beam_size: int) -> "CompareTab":
        gr.Markdown("The same input through two models with beam search (length penalty α as set in "
                    "Explore), outputs and attention side by side. The text follows the Explore tab's.")
        with gr.Row():
            model_a = gr.Dropdown(names, value=first, label="Model A", elem_id="compare-a")
            model_b = gr.Dropdown(names, value=next((n for n in names if n.endswith("noattn")), first),
                                  label="Model B", elem_id="compare-b")
        with gr.Row():  # a Transformer side's layer and head, shown only for a Transformer
            heads = [head_picker(side.value, label=f"Model {name} heatmap shows", elem_id=f"compare-{name.lower()}-head")
                     for side, name in ((model_a, "A"), (model_b, "B"))]
        with gr.Row():
            text = gr.Textbox(label="Source text", lines=2, scale=4, elem_id="compare-text")
            beam = gr.Slider(1, UI_MAX_BEAM, value=beam_size, step=1, label="Beam size", scale=2)
            button = gr.Button("Compare", variant="primary", scale=1, elem_id="compare-button")
        outputs: list[gr.components.Component] = []
        with gr.Row():
            for side in ("A", "B"):
                with gr.Column():
                    outputs += [gr.Textbox(label=f"Model {side} output", interactive=False,
                                           elem_id=f"compare-{side.lower()}-output"),
                                gr.Markdown(),
                                gr.Plot(label=f"Model {side} attention (sentence 1)", show_label=False,
                                        elem_id=f"compare-{side.lower()}-heatmap")]
        return cls(model_a, model_b, heads, text, beam, button, outputs)

    def connect(self, explore_text: gr.Textbox, alpha: gr.Slider, merge_words: gr.Checkbox) -> None:
        """Its events: the Explore text copied in the browser, Compare (or Enter) runs both models."""
        explore_text.change(None, explore_text, self.text, js="(source) => source")  # in the browser only
        for side, picker in zip((self.model_a, self.model_b), self.heads):
            side.change(head_picker, side, picker, api_visibility="undocumented")
        inputs = [self.model_a, self.model_b, self.text, self.beam_size, alpha, merge_words, *self.heads]
        for trigger in (self.button.click, self.text.submit, *(picker.input for picker in self.heads)):
            trigger(compare_models, inputs, self.outputs, api_visibility="undocumented")


# ---------------------------------------------------------------- layout and events

def unchanged(components: list[gr.components.Component]) -> dict:
    """An event's answer that leaves every one of its outputs as it is (Gradio reads an empty
    dict as one missing value, and shows an error badge on every output)."""
    return {component: gr.skip() for component in components}


def build_more_settings(page: "Page") -> gr.Checkbox:
    """The folded "More decoding settings": the rarer decoding controls (set on ``page``) and the
    word-merging switch of the Plotly views, which it returns."""
    with gr.Accordion("More decoding settings", open=False, elem_id="settings-box"):
        page.control("nbest", gr.Slider, 1, UI_MAX_BEAM, value=UI_NBEST, step=1,
                     label="n-best (≤ beam size) / samples")
        page.control("alpha", gr.Slider, 0.0, 2.0, step=0.1, label="Length penalty α (0 = raw log-prob)")
        page.control("coverage_penalty", gr.Slider, 0.0, 1.0, step=0.05,
                     label="Coverage penalty β (punishes source words left unread; 0 = off)")
        page.control("min_length_ratio", gr.Slider, 0.0, 1.5, step=0.1,
                     label="Min length × source (0 = off)")
        page.control("max_length_ratio", gr.Slider, 0.5, 4.0, step=0.1, label="Max length × source")
        page.control("max_length_extra", gr.Slider, 0, 50, step=1, label="Max length + extra tokens")
        page.control("no_repeat_ngram", gr.Slider, 0, 6, step=1, label="No-repeat n-gram (0 = off)")
        page.control("prefix", gr.Textbox, lines=1,
                     label="Forced output prefix (every sentence; right column only, greedy stays free)")
        page.control("split_sentences", gr.Checkbox, label="Translate a paragraph sentence by sentence")
        page.control("alternatives", gr.Slider, 0, 20, value=UI_ALTERNATIVES, step=1,
                     label="Alternatives kept per output word (click a word to see them)")
        page.control("heads_off", gr.Textbox, label="Transformer heads switched off in every output "
                     "(e.g. cross.0.2, encoder.0.3; or tick them in the heads grid)",
                     max_length=MAX_HEADS_OFF_CHARS, elem_id="heads-off")
        merge_words = gr.Checkbox(True, label="Words, not pieces, in the Plotly heatmaps of the "
                                              "classic views and the Compare tab (sum over source "
                                              "pieces, mean over output pieces)")
    return merge_words


def build_input_band(page: Page, names: list[str], first: str | None) -> None:
    """One band with what every translation needs (``page.model``, ``.text``, ``.translate_button``,
    the strategy and the beam size), and the sampling controls shown when sampling is chosen
    (``page.sampling``, ``.resample_button``); everything else folds away, so that the outputs and
    the heatmap fit the first screen (1280 x 720)."""
    with gr.Row(elem_id="input-band", equal_height=True):
        page.model = gr.Dropdown(names, value=first, label="Model", interactive=True, scale=1,
                                 min_width=120, elem_id="model-picker")
        # One line that grows to 8: Enter translates, Shift+Enter starts a new line.
        page.text = gr.Textbox(label="Source text · Enter translates, Shift+Enter: new line", lines=1, max_lines=8,
                               elem_id="source-text", scale=5, placeholder="Type a sentence, or click an example below")
        page.translate_button = gr.Button("Translate", variant="primary", elem_id="translate-button", scale=0,
                                          min_width=110)
        page.control("strategy", gr.Dropdown, ["beam", "sample"], label="Compare greedy with", elem_id="strategy",
                     scale=1, min_width=140)
        page.control("beam_size", gr.Slider, 1, UI_MAX_BEAM, step=1, label="Beam size", elem_id="beam-size",
                     scale=1, min_width=150)
    with gr.Group(visible=False, elem_id="sampling") as page.sampling:
        with gr.Row():
            page.control("temperature", gr.Slider, 0.1, 3.0, step=0.05, label="Sampling temperature")
            page.control("top_k", gr.Slider, 0, 100, step=1, label="Sampling top-k (0 = off)")
            page.control("top_p", gr.Slider, 0.05, 1.0, step=0.05, label="Sampling top-p (1 = off)")
            page.control("seed", gr.Number, precision=0, label="Sampling seed (empty = new samples each time)")
            page.resample_button = gr.Button("Resample (a fresh seed)", elem_id="resample-button", size="sm")


def build_options_band(page: Page, first: str | None) -> None:
    """The folded band under it: the examples (``page.examples_box``, ``.examples``; open on a bare
    page, something to click first, folded by the first translation), more decoding settings
    (``page.merge_words``), the reference (``page.reference``) and the model card (``page.card``)."""
    with gr.Row(elem_id="options-band"):
        with gr.Accordion("Examples (click one to translate)", open=True, elem_id="examples-box") as page.examples_box:
            page.examples = gr.Dataset(components=[page.text], samples=example_samples(first), label="Examples",
                                       show_label=False, samples_per_page=6)
        page.merge_words = build_more_settings(page)
        with gr.Accordion("Reference translation", open=False, elem_id="reference-box"):
            page.reference = gr.Textbox(label="Reference translation (optional): sentence BLEU and chrF of every "
                                              "output", lines=1, elem_id="reference")
        with gr.Accordion("About this model", open=False, elem_id="card-box"):
            page.card = gr.Markdown(model_markdown(first), elem_classes="model-card", elem_id="model-card")


def build_results(page: Page) -> None:
    """Where a translation appears: the notes, the sentence picker, the verdict and the linked view,
    then the reference scores, export and share (``page.export_button``, ``.share_button``,
    ``.export_file``) and the session's ``page.state``."""
    with gr.Column(elem_id="results"):  # no gaps around the notes while they are empty
        page.status = gr.Markdown(elem_id="status")
        page.sentence = gr.Radio(choices=[], type="index", label="Sentence shown below", visible=False,
                                 elem_id="sentence-picker")
        page.verdict = gr.Markdown(elem_id="verdict")
        page.linked = linked_view(service)
    with gr.Row():
        page.reference_scores = gr.Markdown(elem_id="reference-scores")
        with gr.Column():
            with gr.Row():
                page.export_button = gr.Button("Export result as JSON", elem_id="export-button")
                page.share_button = gr.Button("Copy a link to this view", elem_id="share-button")
            page.export_file = gr.File(label="Exported JSON", interactive=False, elem_id="export-file", height=90,
                                       visible=False)
    page.state = gr.State(time_to_live=STATE_TTL_SECONDS)


def build_app(max_batch: int = 32, concurrency: int = 8, queue_size: int = 256,
              memory_budget_mb: int = DEFAULT_MEMORY_BUDGET // 2**20) -> gr.Blocks:
    """The page. ``max_batch`` concurrent requests are decoded together (1 = each alone);
    ``concurrency`` page events run at once (``/translate``: up to ``max_batch`` if more, so that
    they can share a batch); at most ``queue_size`` requests wait, further ones are told the
    queue is full. A search or a saliency request holds at most ``memory_budget_mb`` MB (larger
    batches are split; a single sentence over it is refused with a message)."""
    if max_batch != service.batcher.max_batch:
        service.batcher = RequestBatcher(max_batch=max_batch)
    service.set_memory_budget(memory_budget_mb * 2**20)
    names = service.catalog.names()
    first = names[0] if names else None
    page = Page()
    with gr.Blocks(title="s2s explorer") as demo:
        gr.Markdown("# **s2s explorer** · type a sentence or a paragraph, compare **greedy** with **beam search**, "
                    "hover and click the output words to see why", elem_id="title")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Explore", id="explore"):
                build_input_band(page, names, first)
                build_options_band(page, first)
                missing = ({field.name for field in dataclasses.fields(DecodeSettings)} - set(page.controls)
                           - LINKED_VIEW_SETTINGS)
                assert not missing, f"settings without a control: {missing}"
                build_results(page)
                model, text, reference, merge_words = page.model, page.text, page.reference, page.merge_words
                state, reference_scores_view, export_file = page.state, page.reference_scores, page.export_file
                examples_box, examples, card = page.examples_box, page.examples, page.card

                page.classic_open = gr.State(False)
                classic = build_classic_views(page)
            with gr.Tab("Compare two models", id="compare"):
                compare_tab = CompareTab.build(names, first, page.controls["beam_size"].value)
            with gr.Tab("Train your own", id="train"):
                train = build_train_tab(service.catalog, [model, compare_tab.model_a, compare_tab.model_b],
                                        service.gate)

        def explore(values: dict) -> dict:
            """Greedy and the chosen strategy on one input, with everything the page shows."""
            settings = {name: values[component] for name, component in page.controls.items()}
            if settings["strategy"] == "beam":
                settings["nbest"] = min(whole(settings["nbest"]), whole(settings["beam_size"]))
            second_settings = settings_from(settings)
            greedy_settings = dataclasses.replace(second_settings, strategy="greedy", prefix="")
            view = View(values[model], *translate_all([(values[model], values[text], greedy_settings),
                                                       (values[model], values[text], second_settings)]))
            return {**render(view, values[merge_words], values[classic_open], page), state: view,
                    reference_scores_view: reference_markdown(reference_scores(values[reference],
                                                                          reference_outputs(view))),
                    export_file: gr.update(value=None, visible=False), examples_box: gr.update(open=False)}

        def select_sentence(view: View | None, merge: bool, classic: bool, index: int | None) -> dict:
            if not view or index is None:
                return unchanged(page_outputs)
            view = dataclasses.replace(view, sentence=int(index), selected=0)
            return {**render(view, merge, classic, page), state: view}

        def select_hypothesis(view: View | None, merge: bool, classic: bool, event: gr.SelectData) -> dict:
            """A click on a row of the n-best table: show that hypothesis everywhere it is shown."""
            sentence = sentence_of(view.second, view.sentence) if view else None
            if not sentence or not sentence["hypotheses"]:
                return unchanged(page_outputs)
            row = int(event.index[0] if isinstance(event.index, (list, tuple)) else event.index)
            view = dataclasses.replace(view, selected=min(max(0, row), len(sentence["hypotheses"]) - 1))
            return {**render(view, merge, classic, page), state: view}

        def redraw(view: View | None, merge: bool, classic: bool) -> dict:
            return {**render(view, merge, classic, page), state: view} if view else unchanged(page_outputs)

        def rescore(view: View | None, reference_text: str) -> str:
            """The reference was edited: score the outputs shown again (the model does not run)."""
            return reference_markdown(reference_scores(reference_text, reference_outputs(view))) if view else \
                reference_markdown({})

        def export(view: View | None, reference_text: str) -> Any:
            if not view:
                raise gr.Error("Nothing to export yet: translate something first.")
            scores = reference_scores(reference_text, reference_outputs(view))
            path = exports.write(dataclasses.asdict(view) | {"reference": reference_text or "",
                                                              "reference_scores": scores}, view.model)
            return gr.update(value=str(path), visible=True)

        shared = [model, text, reference, *page.controls.values()]
        shared_names = [*PAGE_FIELDS, *page.controls]

        def restore(request: gr.Request) -> list[Any]:
            """Opening a shared link: the values it names, every other control unchanged."""
            values = restored_values(dict(request.query_params) if request else {}, names)
            return [values.get(name, gr.skip()) for name in shared_names]

        def explore_restored(values: dict) -> dict:
            """A shared link's text translated at once; a bare page load changes nothing."""
            if isinstance(values[text], str) and values[text].strip():
                return explore(values)
            return unchanged(explore_outputs)

        def on_model_change(name: str):
            return model_markdown(name), gr.Dataset(samples=example_samples(name))

        def on_strategy_change(choice: str):
            return gr.Group(visible=choice == "sample"), gr.Slider(visible=choice == "beam")

        page_outputs = [page.greedy_text, page.greedy_score, page.greedy_tokens, page.second_text, page.second_score,
                        page.second_tokens, page.verdict, page.nbest, page.greedy_heatmap, page.second_heatmap,
                        page.tree, page.status, page.sentence, page.linked, state]
        classic_open = page.classic_open
        explore_outputs = [*page_outputs, reference_scores_view, export_file, examples_box]
        explore_inputs = {model, text, reference, merge_words, classic_open, *page.controls.values()}
        for trigger in (page.translate_button.click, text.submit):
            trigger(explore, explore_inputs, explore_outputs,
                    api_visibility="undocumented")
        page.resample_button.click(lambda: None, None, page.controls["seed"], api_visibility="undocumented").then(
            explore, explore_inputs, explore_outputs, api_visibility="undocumented")
        examples.click(lambda sample: sample[0], examples, text, api_visibility="undocumented").then(
            explore, explore_inputs, explore_outputs,
            api_visibility="undocumented")
        model.change(on_model_change, model, [card, examples], api_visibility="undocumented")
        page.share_button.click(None, shared, None, js=share_script(shared_names))
        demo.load(restore, None, shared, api_visibility="undocumented").then(
            explore_restored, explore_inputs, explore_outputs,
            api_visibility="undocumented")
        demo.load(train["load"], None, train["outputs"], api_visibility="undocumented")
        page.controls["strategy"].change(on_strategy_change, page.controls["strategy"],
                                         [page.sampling, page.controls["beam_size"]],
                        api_visibility="undocumented")
        page.sentence.input(select_sentence, [state, merge_words, classic_open, page.sentence], page_outputs,
                            api_visibility="undocumented")
        page.nbest.select(select_hypothesis, [state, merge_words, classic_open], page_outputs,
                          api_visibility="undocumented")
        merge_words.change(redraw, [state, merge_words, classic_open], page_outputs, api_visibility="undocumented")
        for opened, trigger in ((True, classic.expand), (False, classic.collapse)):
            trigger(lambda opened=opened: opened, None, classic_open, api_visibility="undocumented").then(
                redraw, [state, merge_words, classic_open], page_outputs, api_visibility="undocumented")
        page.export_button.click(export, [state, reference], export_file, api_visibility="undocumented")
        reference.input(rescore, [state, reference], reference_scores_view, api_visibility="undocumented")
        compare_tab.connect(text, page.controls["alpha"], merge_words)
        gr.api(signature_from_settings(translate_api), api_name="translate",
               concurrency_limit=max(max_batch, concurrency))
        gr.api(models_api, api_name="models")
        WhatIf(service).register()
    page.inputs = {"model": model, "text": text, "reference": reference, "merge_words": merge_words,
                   "classic": classic_open}
    page.handlers = {"explore": explore, "select_sentence": select_sentence, "select_hypothesis": select_hypothesis,
                     "redraw": redraw, "rescore": rescore, "export": export, "compare": compare_models}
    page.train = train
    demo.page = page  # type: ignore[attr-defined]  (the tests call the handlers through it)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return demo
