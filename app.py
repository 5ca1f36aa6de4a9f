"""The explorer: type a sentence, compare greedy with beam search (or sampling), and look
inside: per-token probabilities, the n-best list, attention heatmaps of any hypothesis, the
beam tree, a second model side by side, and scores against a reference.

    python app.py [--host 127.0.0.1] [--port 7860] [--checkpoints checkpoints]

A thin layer: the model runs only through ``s2s.load(...).translate(...)`` (via the catalog),
and every figure is drawn from the result it returns (``s2s.plots``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage reporting

import gradio as gr  # noqa: E402  (reads the setting above at import)

from s2s.catalog import ModelCatalog
from s2s.evaluate import sentence_scores
from s2s.plots import attention_heatmap, beam_tree, empty_figure, piece_label
from s2s.translator import make_settings

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
DEFAULT_MODEL = "en-fr"
UI_MAX_BEAM = 16
PROBABILITY_BANDS = [(0.9, "p ≥ 0.9"), (0.5, "0.5 ≤ p < 0.9"), (0.2, "0.2 ≤ p < 0.5"), (0.0, "p < 0.2")]
BAND_COLORS = {"p ≥ 0.9": "#4caf50", "0.5 ≤ p < 0.9": "#cddc39", "0.2 ≤ p < 0.5": "#ff9800", "p < 0.2": "#f44336"}

catalog = ModelCatalog(Path(os.environ.get("S2S_CHECKPOINTS", ROOT / "checkpoints")), default=DEFAULT_MODEL)
EXAMPLES: dict[str, list[str]] = json.loads((ASSETS / "examples.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- presentation helpers

def model_markdown(name: str | None) -> str:
    """The card summary shown under the model picker (trusted text from metrics.json)."""
    if not name:
        return "No model found in `checkpoints/`."
    summary = catalog.summary(name)
    if "error" in summary:
        return f"**Cannot read this model's card:** {summary['error']}"
    lines = [f"**{summary['title']}**"]
    if summary["description"]:
        lines.append(summary["description"])
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


def source_language(name: str | None) -> str:
    return name.split("-")[0] if name and "-" in name else "en"


def example_samples(name: str | None) -> list[list[str]]:
    return [[text] for text in EXAMPLES.get(source_language(name), EXAMPLES["en"])]


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


def nbest_rows(result: dict[str, Any] | None) -> list[list[Any]]:
    if not result:
        return []
    return [[rank, h["text"], round(h["score"], 3), round(h["normalized_score"], 3), len(h["ids"])]
            for rank, h in enumerate(result["hypotheses"], start=1)]


def reference_markdown(reference: str, outputs: dict[str, dict[str, Any] | None]) -> str:
    """Sentence BLEU and chrF (sacrebleu) of each output against the reference (numbers only)."""
    if not reference.strip():
        return "Add a reference translation to score the outputs (sentence BLEU and chrF, sacrebleu)."
    lines = ["| output | BLEU | chrF |", "| --- | --- | --- |"]
    for label, hypothesis in outputs.items():
        if hypothesis:
            scores = sentence_scores(hypothesis["text"], [reference.strip()])
            lines.append(f"| {label} | {scores['bleu']:.1f} | {scores['chrf']:.1f} |")
    return "\n".join(lines)


def heatmap_for(result: dict[str, Any] | None, index: int, title: str, merge_words: bool):
    if not result or not result["hypotheses"]:
        return empty_figure("Nothing to show yet: type a sentence and press Translate.")
    index = min(max(0, index), len(result["hypotheses"]) - 1)
    hypothesis = result["hypotheses"][index]
    return attention_heatmap(result["source_pieces"], hypothesis["pieces"], hypothesis["attention"],
                             title, merge_words)


def export_file(payload: dict[str, Any]) -> str:
    """Write the whole result (hypotheses, scores, attention, trace) to a JSON file to download."""
    handle, path = tempfile.mkstemp(prefix="s2s-result-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(payload, file, ensure_ascii=False, indent=1)
    return path


def status_markdown(result: dict[str, Any]) -> str:
    lines = []
    if result.get("message"):
        lines.append(f"**Note:** {result['message']}")
    lines += [f"**Warning:** {warning}" for warning in result.get("warnings", [])]
    return "\n\n".join(lines)


def _settings(strategy: str, beam_size: float, nbest: float, alpha: float, max_length_ratio: float,
              no_repeat_ngram: float, temperature: float, top_k: float, top_p: float, seed: float | None,
              prefix: str):
    """Validated decoding settings from UI or API values (sliders send floats)."""
    def whole(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    try:
        return make_settings(
            strategy=strategy, beam_size=whole(beam_size), nbest=whole(nbest),
            alpha=alpha, max_length_ratio=max_length_ratio, no_repeat_ngram=whole(no_repeat_ngram),
            temperature=temperature, top_k=whole(top_k), top_p=top_p,
            seed=None if seed in (None, "") else whole(seed), prefix=prefix or "")
    except ValueError as error:
        raise gr.Error(f"Invalid setting: {error}") from None


def _translator(name: str):
    try:
        return catalog.get(name)
    except ValueError as error:
        raise gr.Error(str(error)) from None


# ---------------------------------------------------------------- event handlers

def explore(model: str, text: str, strategy: str, beam_size: float, nbest: float, alpha: float,
            max_length_ratio: float, no_repeat_ngram: float, temperature: float, top_k: float, top_p: float,
            seed: float | None, prefix: str, reference: str, merge_words: bool) -> tuple:
    """Greedy and the chosen strategy on one input, with everything the page shows."""
    if strategy == "beam" and nbest > beam_size:
        nbest = beam_size
    settings = _settings(strategy, beam_size, nbest, alpha, max_length_ratio, no_repeat_ngram, temperature,
                         top_k, top_p, seed, prefix)
    translator = _translator(model)
    text = text if isinstance(text, str) else ""
    greedy = translator.translate(text, settings, strategy="greedy")
    second = translator.translate(text, settings)
    state = {"model": model, "greedy": greedy, "second": second, "selected": 0}
    return (*_render(state, merge_words), reference_markdown(reference or "", {
        "greedy": _best(greedy), f"{strategy} (best)": _best(second)}), export_file(state), state)


def _best(result: dict[str, Any] | None) -> dict[str, Any] | None:
    return result["hypotheses"][0] if result and result["hypotheses"] else None


def _strategy_label(result: dict[str, Any]) -> str:
    return "Beam search" if result["settings"]["strategy"] == "beam" else "Sampling"


def _selected_heatmap(state: dict[str, Any], merge_words: bool):
    """Heatmap of the hypothesis selected in the n-best table (the best one until a row is clicked)."""
    second, selected = state["second"], state["selected"]
    return heatmap_for(second, selected, f"{_strategy_label(second)}: attention of hypothesis #{selected + 1}",
                       merge_words)


def _render(state: dict[str, Any], merge_words: bool) -> tuple:
    greedy, second = state["greedy"], state["second"]
    g, s = _best(greedy), _best(second)
    label = _strategy_label(second)
    if g and s:
        verdict = f"**Same output:** greedy and {label.lower()} agree." if g["text"] == s["text"] else \
            f"**Different outputs:** {label.lower()} scores {s['normalized_score']:.3f}, greedy " \
            f"{g['normalized_score']:.3f} (normalised log-probability; higher is better)."
    else:
        verdict = ""
    return (
        g["text"] if g else "", score_line(g), token_highlights(g),
        s["text"] if s else "", score_line(s), token_highlights(s),
        verdict, nbest_rows(second),
        heatmap_for(greedy, 0, "Greedy: attention", merge_words), _selected_heatmap(state, merge_words),
        beam_tree(second["trace"], second["hypotheses"], "Beam search tree"),
        status_markdown(greedy),
    )


def select_hypothesis(state: dict[str, Any] | None, merge_words: bool, event: gr.SelectData):
    """A click on a row of the n-best table: show that hypothesis's attention and tokens."""
    if not state or not state["second"]["hypotheses"]:
        return gr.skip(), gr.skip(), state
    row = int(event.index[0] if isinstance(event.index, (list, tuple)) else event.index)
    hypotheses = state["second"]["hypotheses"]
    state = {**state, "selected": min(max(0, row), len(hypotheses) - 1)}
    return _selected_heatmap(state, merge_words), token_highlights(hypotheses[state["selected"]]), state


def redraw_heatmaps(state: dict[str, Any] | None, merge_words: bool):
    if not state:
        return gr.skip(), gr.skip()
    return heatmap_for(state["greedy"], 0, "Greedy: attention", merge_words), _selected_heatmap(state, merge_words)


def compare_models(model_a: str, model_b: str, text: str, beam_size: float, alpha: float, merge_words: bool):
    """The same input through two models with beam search; outputs and attention side by side."""
    settings = _settings("beam", beam_size, 1, alpha, 2.0, 0, 1.0, 0, 1.0, None, "")
    outputs = []
    for name in (model_a, model_b):
        result = _translator(name).translate(text if isinstance(text, str) else "", settings)
        best = _best(result)
        outputs += [best["text"] if best else status_markdown(result), score_line(best),
                    heatmap_for(result, 0, f"{name}: attention", merge_words)]
    return tuple(outputs)


def on_model_change(name: str):
    return model_markdown(name), gr.Dataset(samples=example_samples(name))


def translate_api(model: str, text: str, strategy: str = "beam", beam_size: int = 5, nbest: int = 1,
                  alpha: float = 0.6, max_length_ratio: float = 2.0, no_repeat_ngram: int = 0,
                  temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                  prefix: str = "") -> dict:
    """Translate ``text`` with ``model``; returns hypotheses, scores, attention and the beam trace."""
    settings = _settings(strategy, beam_size, nbest, alpha, max_length_ratio, no_repeat_ngram, temperature,
                         top_k, top_p, seed, prefix)
    return _translator(model).translate(text if isinstance(text, str) else "", settings)


def models_api() -> list[dict]:
    """Every model folder with its card summary."""
    return [catalog.summary(name) for name in catalog.names()]


# ---------------------------------------------------------------- layout

def build_app() -> gr.Blocks:
    names = catalog.names()
    first = names[0] if names else None
    with gr.Blocks(title="s2s explorer") as demo:
        gr.Markdown("# s2s explorer\nType a sentence, compare **greedy** and **beam search**, and look inside: "
                    "token probabilities, the n-best list, attention of every hypothesis and the beam tree.")
        with gr.Row():
            with gr.Column(scale=2):
                model = gr.Dropdown(names, value=first, label="Model", interactive=True)
                card = gr.Markdown(model_markdown(first), elem_classes="model-card")
                text = gr.Textbox(label="Source sentence", lines=2, max_lines=8, elem_id="source-text",
                                  placeholder="Type a sentence, or click an example below")
                examples = gr.Dataset(components=[text], samples=example_samples(first), label="Examples",
                                      samples_per_page=8)
                reference = gr.Textbox(label="Reference translation (optional)", lines=1)
                translate_button = gr.Button("Translate", variant="primary", elem_id="translate-button")
            with gr.Column(scale=1):
                strategy = gr.Radio(["beam", "sample"], value="beam", label="Compare greedy with",
                                    elem_id="strategy")
                beam_size = gr.Slider(1, UI_MAX_BEAM, value=5, step=1, label="Beam size", elem_id="beam-size")
                nbest = gr.Slider(1, UI_MAX_BEAM, value=5, step=1, label="n-best (≤ beam size) / samples")
                alpha = gr.Slider(0.0, 2.0, value=0.6, step=0.1, label="Length penalty α (0 = raw log-prob)")
                with gr.Accordion("More decoding settings", open=False):
                    max_length_ratio = gr.Slider(0.5, 4.0, value=2.0, step=0.1, label="Max length × source")
                    no_repeat_ngram = gr.Slider(0, 6, value=0, step=1, label="No-repeat n-gram (0 = off)")
                    prefix = gr.Textbox(label="Forced output prefix", lines=1)
                    temperature = gr.Slider(0.1, 3.0, value=1.0, step=0.05, label="Sampling temperature")
                    top_k = gr.Slider(0, 100, value=0, step=1, label="Sampling top-k (0 = off)")
                    top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Sampling top-p (1 = off)")
                    seed = gr.Number(value=0, precision=0, label="Sampling seed")
                merge_words = gr.Checkbox(False, label="Merge pieces into words in heatmaps "
                                                       "(sum over source pieces, mean over output pieces)")
        status = gr.Markdown()
        verdict = gr.Markdown(elem_id="verdict")
        with gr.Row():
            with gr.Column():
                greedy_text = gr.Textbox(label="Greedy", interactive=False, elem_id="greedy-output")
                greedy_score = gr.Markdown()
                greedy_tokens = gr.HighlightedText(label="Greedy tokens by probability", color_map=BAND_COLORS,
                                                   show_legend=True, show_inline_category=False)
            with gr.Column():
                second_text = gr.Textbox(label="Beam search / sampling (best)", interactive=False,
                                         elem_id="beam-output")
                second_score = gr.Markdown()
                second_tokens = gr.HighlightedText(label="Selected hypothesis tokens by probability",
                                                   color_map=BAND_COLORS, show_legend=True,
                                                   show_inline_category=False)
        nbest_table = gr.Dataframe(headers=["#", "hypothesis", "log-prob", "normalised", "tokens"],
                                   datatype=["number", "str", "number", "number", "number"], interactive=False,
                                   label="n-best list: click a row to see its attention", elem_id="nbest")
        with gr.Row():
            greedy_heatmap = gr.Plot(label="Greedy attention", elem_id="greedy-heatmap")
            second_heatmap = gr.Plot(label="Selected hypothesis attention", elem_id="beam-heatmap")
        tree = gr.Plot(label="Beam tree", elem_id="beam-tree")
        with gr.Row():
            reference_scores = gr.Markdown()
            download = gr.DownloadButton("Download result as JSON", elem_id="download")
        state = gr.State()

        with gr.Accordion("Compare two models on the same input", open=False):
            with gr.Row():
                compare_a = gr.Dropdown(names, value=first, label="Model A")
                compare_b = gr.Dropdown(names, value=next((n for n in names if n.endswith("noattn")), first),
                                        label="Model B")
                compare_button = gr.Button("Compare (beam search)")
            with gr.Row():
                with gr.Column():
                    a_text = gr.Textbox(label="Model A output", interactive=False)
                    a_score = gr.Markdown()
                    a_heatmap = gr.Plot(label="Model A attention")
                with gr.Column():
                    b_text = gr.Textbox(label="Model B output", interactive=False)
                    b_score = gr.Markdown()
                    b_heatmap = gr.Plot(label="Model B attention")

        settings_inputs = [strategy, beam_size, nbest, alpha, max_length_ratio, no_repeat_ngram, temperature,
                           top_k, top_p, seed, prefix]
        outputs = [greedy_text, greedy_score, greedy_tokens, second_text, second_score, second_tokens, verdict,
                   nbest_table, greedy_heatmap, second_heatmap, tree, status, reference_scores, download, state]
        for trigger in (translate_button.click, text.submit):
            trigger(explore, [model, text, *settings_inputs, reference, merge_words], outputs,
                    api_visibility="undocumented")
        examples.click(lambda sample: sample[0], examples, text, api_visibility="undocumented")
        model.change(on_model_change, model, [card, examples], api_visibility="undocumented")
        nbest_table.select(select_hypothesis, [state, merge_words], [second_heatmap, second_tokens, state],
                           api_visibility="undocumented")
        merge_words.change(redraw_heatmaps, [state, merge_words], [greedy_heatmap, second_heatmap],
                           api_visibility="undocumented")
        compare_button.click(compare_models, [compare_a, compare_b, text, beam_size, alpha, merge_words],
                             [a_text, a_score, a_heatmap, b_text, b_score, b_heatmap], api_visibility="undocumented")
        gr.api(translate_api, api_name="translate")
        gr.api(models_api, api_name="models")
    demo.queue(default_concurrency_limit=2, max_size=128)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="Start the s2s explorer.")
    parser.add_argument("--host", default=os.environ.get("S2S_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("S2S_PORT", "7860")))
    args = parser.parse_args()
    build_app().launch(server_name=args.host, server_port=args.port, css_paths=[ASSETS / "style.css"],
                       footer_links=["api"])


if __name__ == "__main__":
    main()
