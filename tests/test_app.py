"""The app's functions return real figures and handle bad input (no browser needed)."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest

import app
from s2s.catalog import ModelCatalog
from s2s.checkpoint import save_model
from s2s.plots import merge_attention
from s2s.translator import Translator

OUTPUT_NAMES = ["greedy_text", "greedy_score", "greedy_tokens", "second_text", "second_score", "second_tokens",
                "verdict", "nbest", "greedy_heatmap", "second_heatmap", "tree", "status", "reference", "download",
                "state"]


@pytest.fixture
def catalog(translator: Translator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelCatalog:
    save_model(tmp_path / "en-fr", translator.model, translator.tokenizer)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{oops")
    catalog = ModelCatalog(tmp_path, default="en-fr")
    monkeypatch.setattr(app, "catalog", catalog)
    return catalog


def explore(text: str, strategy: str = "beam", beam_size: int = 5, nbest: int = 5, reference: str = "",
            merge_words: bool = False, model: str = "en-fr") -> dict:
    values = app.explore(model, text, strategy, beam_size, nbest, 0.6, 2.0, 0, 1.0, 0, 1.0, 0, "", reference,
                         merge_words)
    assert len(values) == len(OUTPUT_NAMES)
    return dict(zip(OUTPUT_NAMES, values))


def heatmap_trace(figure: go.Figure) -> go.Heatmap:
    (trace,) = [t for t in figure.data if isinstance(t, go.Heatmap)]
    return trace


def test_explore_returns_real_figures_of_the_right_shape(catalog: ModelCatalog) -> None:
    out = explore("the big cat runs")
    state = out["state"]
    for figure, result, index in ((out["greedy_heatmap"], state["greedy"], 0), (out["second_heatmap"], state["second"], 0)):
        hypothesis = result["hypotheses"][index]
        z = np.asarray(heatmap_trace(figure).z)
        assert z.shape == (len(hypothesis["pieces"]), len(result["source_pieces"]))
        np.testing.assert_allclose(z, hypothesis["attention"])
        assert heatmap_trace(figure).zmin == 0 and heatmap_trace(figure).zmax == 1
    tree = out["tree"]
    assert isinstance(tree, go.Figure)
    kept = sum(len(step["alive"]) for step in state["second"]["trace"])
    finished = sum(len(step["finished"]) for step in state["second"]["trace"])
    markers = sum(len(t.x) for t in tree.data if t.mode == "markers+text") - 1  # minus the <s> root
    assert markers == kept + finished
    assert len(out["nbest"]) == 5 and out["nbest"][0][1] == out["second_text"]
    assert out["greedy_text"] == state["greedy"]["hypotheses"][0]["text"]
    assert all(band in app.BAND_COLORS for _, band in out["greedy_tokens"])


def test_json_export_round_trips(catalog: ModelCatalog) -> None:
    out = explore("red cat")
    exported = json.loads(Path(out["download"]).read_text(encoding="utf-8"))
    assert exported == json.loads(json.dumps(out["state"]))
    assert exported["second"]["hypotheses"][0]["attention"] and exported["second"]["trace"]


def test_markup_is_escaped_in_every_figure_label(catalog: ModelCatalog) -> None:
    out = explore("<script>alert(1)</script> <b>bold</b>")
    for figure in (out["greedy_heatmap"], out["second_heatmap"], out["tree"]):
        labels = figure.to_json()
        assert "<script" not in labels and "<b>bold" not in labels and "</s>" not in labels
    ticks = out["greedy_heatmap"].layout.yaxis.ticktext
    assert ticks[-1] == "&lt;/s&gt;"
    assert "&lt;" in "".join(out["greedy_heatmap"].layout.xaxis.ticktext)


def test_selecting_a_row_shows_that_hypothesis(catalog: ModelCatalog) -> None:
    out = explore("dog eats the small green bird", beam_size=4, nbest=4)
    event = gr.SelectData(None, {"index": [2, 1], "value": "", "selected": True})
    heatmap, tokens, state = app.select_hypothesis(out["state"], False, event)
    chosen = state["second"]["hypotheses"][2]
    np.testing.assert_allclose(np.asarray(heatmap_trace(heatmap).z), chosen["attention"])
    assert len(tokens) == len(chosen["pieces"]) and state["selected"] == 2


def test_merging_pieces_into_words_keeps_rows_summing_to_one(catalog: ModelCatalog) -> None:
    out = explore("the big cat sleeps", merge_words=True)
    z = np.asarray(heatmap_trace(out["greedy_heatmap"]).z)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-5)
    merged, source_words, target_words = merge_attention(
        np.full((3, 4), 0.25), ["▁the", "▁ca", "t", "</s>"], ["▁le", "▁chat", "</s>"])
    assert source_words == ["the", "cat", "</s>"] and target_words == ["le", "chat", "</s>"]
    np.testing.assert_allclose(merged[:, 1], 0.5)


def test_empty_input_shows_a_friendly_message(catalog: ModelCatalog) -> None:
    out = explore("   ")
    assert "Empty input" in out["status"]
    assert out["greedy_text"] == "" and out["nbest"] == []


def test_long_input_shows_a_visible_warning(catalog: ModelCatalog) -> None:
    out = explore("the big red cat runs " * 100, beam_size=2, nbest=1)
    assert "cut off" in out["status"]


def test_reference_gives_sentence_bleu_and_chrf(catalog: ModelCatalog) -> None:
    out = explore("red cat", reference="cat red")
    assert "BLEU" in out["reference"] and "chrF" in out["reference"] and "| greedy |" in out["reference"]


def test_sampling_column(catalog: ModelCatalog) -> None:
    out = explore("red cat", strategy="sample", nbest=3)
    assert len(out["nbest"]) == 3 and out["state"]["second"]["trace"] is None


@pytest.mark.parametrize("overrides, setting", [
    ({"beam_size": 0}, "beam_size"), ({"beam_size": 1000}, "beam_size"), ({"temperature": -1.0}, "temperature"),
    ({"top_p": 2.0}, "top_p"), ({"strategy": "astrology"}, "strategy"), ({"nbest": 9, "beam_size": 3}, "nbest"),
])
def test_out_of_range_settings_through_the_api_get_a_clear_error(catalog: ModelCatalog, overrides: dict,
                                                                 setting: str) -> None:
    with pytest.raises(gr.Error, match=setting):
        app.translate_api("en-fr", "red cat", **overrides)


def test_a_broken_model_is_reported_and_the_others_keep_working(catalog: ModelCatalog) -> None:
    assert catalog.names() == ["en-fr", "broken"]
    with pytest.raises(gr.Error, match="config.json"):
        app.translate_api("broken", "red cat")
    assert "config.json" in app.model_markdown("broken") or "broken" in app.model_markdown("broken")
    assert app.translate_api("en-fr", "red cat")["hypotheses"]
    with pytest.raises(gr.Error, match="unknown model"):
        app.translate_api("nope", "red cat")


def test_compare_two_models(catalog: ModelCatalog, translator: Translator) -> None:
    save_model(catalog.root / "en-fr-noattn", translator.model, translator.tokenizer)
    a_text, _, a_heatmap, b_text, _, b_heatmap = app.compare_models("en-fr", "en-fr-noattn", "red cat", 3, 0.6, False)
    assert a_text == b_text and isinstance(a_heatmap, go.Figure) and isinstance(b_heatmap, go.Figure)


def test_the_app_builds_with_named_api_endpoints(catalog: ModelCatalog) -> None:
    demo = app.build_app()
    api_names = {dependency.get("api_name") for dependency in demo.config["dependencies"]}
    assert {"translate", "models"} <= api_names
    assert app.models_api()[0]["name"] == "en-fr"


def test_a_model_without_attention_gets_an_explanation_instead_of_a_heatmap(
        catalog: ModelCatalog, translator: Translator) -> None:
    from tests.conftest import random_model
    save_model(catalog.root / "en-fr-noattn", random_model(translator.tokenizer.vocab_size, "none"),
               translator.tokenizer)
    out = explore("red cat", model="en-fr-noattn")
    assert not [t for t in out["greedy_heatmap"].data if isinstance(t, go.Heatmap)]
    assert "no attention" in out["greedy_heatmap"].layout.annotations[0].text
    assert out["second_text"] == out["nbest"][0][1]
