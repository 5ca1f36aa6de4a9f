"""The app's functions return real figures and handle bad input (no browser needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest

from s2s.catalog import ModelCatalog
from s2s.checkpoint import save_model
from s2s.plots import merge_attention
from s2s.service import Service
from s2s.tokenizer import word_spans
from s2s.translator import Translator
from s2s.ui import explorer
from s2s.ui.linked_view import server_functions
from tests.conftest import random_model


@pytest.fixture
def catalog(translator: Translator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelCatalog:
    save_model(tmp_path / "en-fr", translator.model, translator.tokenizer)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{oops")
    catalog = ModelCatalog(tmp_path, default="en-fr")
    monkeypatch.setattr(explorer, "service", Service(catalog))
    return catalog


@pytest.fixture
def page(catalog: ModelCatalog) -> explorer.Page:
    return explorer.build_app().page


def explore(page: explorer.Page, text: str, **options) -> dict:
    """The page's Translate click (with the classic views open unless ``classic=False``);
    the outputs are keyed by the page attribute they are shown in."""
    options.setdefault("classic", True)
    return named(page, page.handlers["explore"](page.explore_values(options.pop("model", "en-fr"), text, **options)))


def named(page: explorer.Page, outputs: dict) -> dict:
    names = {id(value): name for name, value in vars(page).items() if isinstance(value, gr.components.Component)}
    shown = {names.get(id(component), type(component).__name__): value for component, value in outputs.items()}
    if isinstance(shown.get("linked"), str):  # the linked view's value is JSON text
        shown["linked"] = json.loads(shown["linked"]) if shown["linked"] else None
    return shown


def answered(server_function):
    """A linked-view server function whose JSON text answer is read back as an object."""
    return lambda request: json.loads(server_function(request))


def heatmap_trace(figure: go.Figure) -> go.Heatmap:
    (trace,) = [t for t in figure.data if isinstance(t, go.Heatmap)]
    return trace


def test_explore_returns_real_figures_of_the_right_shape(page: explorer.Page) -> None:
    out = explore(page, "the big cat runs", merge_words=False)  # piece level: one cell per attention weight
    view = out["state"]
    for figure, result in ((out["greedy_heatmap"], view.greedy), (out["second_heatmap"], view.second)):
        (sentence,) = result["sentences"]
        hypothesis = sentence["hypotheses"][0]
        z = np.asarray(heatmap_trace(figure).z)
        assert z.shape == (len(hypothesis["pieces"]), len(sentence["source_pieces"]))
        np.testing.assert_allclose(z, hypothesis["attention"])
        assert heatmap_trace(figure).zmin == 0 and heatmap_trace(figure).zmax == 1
        (bars,) = [t for t in figure.data if isinstance(t, go.Bar)]  # coverage: column sums
        np.testing.assert_allclose(bars.y, np.asarray(hypothesis["attention"]).sum(axis=0))
    tree = out["tree"]
    assert isinstance(tree, go.Figure)
    trace = view.second["sentences"][0]["trace"]
    kept = sum(len(step["alive"]) for step in trace)
    finished = sum(len(step["finished"]) for step in trace)
    markers = sum(len(t.x) for t in tree.data if t.mode == "markers+text") - 1  # minus the <s> root
    assert markers == kept + finished
    assert len(out["nbest"]) == 5 and out["nbest"][0][1] == out["second_text"]
    assert out["greedy_text"] == view.greedy["text"]
    assert all(band in explorer.BAND_COLORS for _, band in out["greedy_tokens"])
    assert out["sentence"].visible is False  # one sentence: no picker


def test_a_paragraph_shows_each_sentence_on_demand(page: explorer.Page) -> None:
    out = explore(page, "The big cat runs. The red dog eats. The small bird sleeps.")
    view = out["state"]
    assert len(view.second["sentences"]) == 3 and out["sentence"].visible is True
    assert out["second_text"] == " ".join(s["hypotheses"][0]["text"] for s in view.second["sentences"])
    picked = named(page, page.handlers["select_sentence"](view, False, True, 2))
    third = view.second["sentences"][2]
    np.testing.assert_allclose(np.asarray(heatmap_trace(picked["second_heatmap"]).z),
                               third["hypotheses"][0]["attention"])
    assert picked["nbest"][0][1] == third["hypotheses"][0]["text"] and picked["state"].sentence == 2
    assert picked["verdict"].startswith("Sentence 3 of 3")


def test_json_export_is_written_only_when_asked_and_round_trips(page: explorer.Page) -> None:
    before = explorer.exports.count()
    out = explore(page, "red cat")
    assert explorer.exports.count() == before and out["export_file"] == {"__type__": "update", "value": None,
                                                                         "visible": False}
    shown = page.handlers["export"](out["state"], "chat rouge")
    assert shown["visible"]
    path = Path(shown["value"])
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert exported["reference"] == "chat rouge" and set(exported["reference_scores"]["greedy"]) == {"bleu", "chrf"}
    assert path.parent == explorer.exports.root and path.name.startswith("s2s-en-fr-")
    assert exported["second"] == json.loads(json.dumps(out["state"].second))
    assert exported["second"]["sentences"][0]["hypotheses"][0]["attention"]


def test_the_export_folder_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    folder = explorer.ExportFolder(parent=tmp_path, keep=5)
    for number in range(40):
        folder.write({"n": number}, "model/../x")
    assert folder.count() == 5
    assert all(path.name.startswith("s2s-model-..-x-") for path in folder.root.iterdir())


def test_markup_is_escaped_in_every_figure_label(page: explorer.Page) -> None:
    out = explore(page, "<script>alert(1)</script> <b>bold</b>", split_sentences=False)
    for figure in (out["greedy_heatmap"], out["second_heatmap"], out["tree"]):
        labels = figure.to_json()
        assert "<script" not in labels and "<b>bold" not in labels and "</s>" not in labels
    ticks = out["greedy_heatmap"].layout.yaxis.ticktext
    assert ticks[-1] == "&lt;/s&gt;"
    assert "&lt;" in "".join(out["greedy_heatmap"].layout.xaxis.ticktext)


def test_selecting_a_row_shows_that_hypothesis_in_every_view(page: explorer.Page) -> None:
    out = explore(page, "dog eats the small green bird", beam_size=4, nbest=4)
    event = gr.SelectData(None, {"index": [2, 1], "value": "", "selected": True})
    picked = named(page, page.handlers["select_hypothesis"](out["state"], False, True, event))
    chosen = out["state"].second["sentences"][0]["hypotheses"][2]
    np.testing.assert_allclose(np.asarray(heatmap_trace(picked["second_heatmap"]).z), chosen["attention"])
    assert len(picked["second_tokens"]) == len(chosen["pieces"]) and picked["state"].selected == 2
    assert f"{chosen['normalized_score']:.3f}" in picked["second_score"]


def test_merging_pieces_into_words_keeps_rows_summing_to_one(page: explorer.Page) -> None:
    out = explore(page, "the big cat sleeps", merge_words=True)
    z = np.asarray(heatmap_trace(out["greedy_heatmap"]).z)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-5)
    merged, source_words, target_words = merge_attention(
        np.full((3, 4), 0.25), ["▁the", "▁ca", "t", "</s>"], ["▁le", "▁chat", "</s>"])
    assert source_words == ["the", "cat", "</s>"] and target_words == ["le", "chat", "</s>"]
    np.testing.assert_allclose(merged[:, 1], 0.5)


def test_empty_input_shows_a_friendly_message(page: explorer.Page) -> None:
    out = explore(page, "   ")
    assert "Empty input" in out["status"]
    assert out["greedy_text"] == "" and out["nbest"] == []


def test_long_input_shows_a_visible_warning(page: explorer.Page) -> None:
    out = explore(page, "the big red cat runs " * 100, beam_size=2, nbest=1)
    assert "cut off" in out["status"]
    too_long = explore(page, "The cat runs. " * 400)
    assert "at most 5,000" in too_long["status"] and too_long["second_text"] == ""


def test_reference_gives_sentence_bleu_and_chrf_for_every_output_and_follows_edits(page: explorer.Page) -> None:
    out = explore(page, "red cat", reference="cat red", nbest=3)
    assert "BLEU" in out["reference_scores"] and "chrF" in out["reference_scores"]
    assert "| greedy |" in out["reference_scores"] and "| beam search #3 |" in out["reference_scores"]
    best = out["state"].second["text"]
    rescored = page.handlers["rescore"](out["state"], best)  # the reference edited: no model run
    assert "| beam search (best) | 100.0 | 100.0 |" in rescored
    assert "Add a reference" in page.handlers["rescore"](out["state"], "  ")


def test_sampling_column(page: explorer.Page) -> None:
    out = explore(page, "red cat", strategy="sample", nbest=3)
    assert len(out["nbest"]) == 3 and out["state"].second["sentences"][0]["trace"] is None
    assert out["state"].second["settings"]["seed"] is None  # a fresh draw each time unless a seed is set


def test_the_controls_are_the_decoding_settings_with_their_defaults(page: explorer.Page) -> None:
    defaults = explorer.DecodeSettings()
    assert set(page.controls) == set(vars(defaults)) - explorer.LINKED_VIEW_SETTINGS
    page_defaults = {"nbest": explorer.UI_NBEST, "alternatives": explorer.UI_ALTERNATIVES}  # the page shows more
    for name, component in page.controls.items():
        assert component.value == page_defaults.get(name, getattr(defaults, name)), name


@pytest.mark.parametrize("overrides, setting", [
    ({"beam_size": 0}, "beam_size"), ({"beam_size": 1000}, "beam_size"), ({"temperature": -1.0}, "temperature"),
    ({"top_p": 2.0}, "top_p"), ({"strategy": "astrology"}, "strategy"), ({"nbest": 9, "beam_size": 3}, "nbest"),
    ({"coverage_penalty": -1}, "coverage_penalty"), ({"split_sentences": "maybe"}, "split_sentences"),
])
def test_out_of_range_settings_through_the_api_get_a_clear_error(catalog: ModelCatalog, overrides: dict,
                                                                 setting: str) -> None:
    with pytest.raises(gr.Error, match=setting):
        explorer.translate_api("en-fr", "red cat", **overrides)


def test_the_api_returns_every_sentence_of_a_paragraph(catalog: ModelCatalog) -> None:
    result = explorer.translate_api("en-fr", "The cat runs. The dog eats. The bird sleeps.", strategy="greedy")
    assert len(result["sentences"]) == 3 and all(s["hypotheses"] for s in result["sentences"])


def test_a_broken_model_is_reported_and_the_others_keep_working(catalog: ModelCatalog) -> None:
    assert catalog.names() == ["en-fr", "broken"]
    with pytest.raises(gr.Error, match="config.json"):
        explorer.translate_api("broken", "red cat")
    assert "config.json" in explorer.model_markdown("broken") or "broken" in explorer.model_markdown("broken")
    assert explorer.translate_api("en-fr", "red cat")["sentences"]
    with pytest.raises(gr.Error, match="unknown model"):
        explorer.translate_api("nope", "red cat")


def test_the_catalog_hides_dot_folders_and_reloads_a_model_retrained_in_place(catalog: ModelCatalog,
                                                                             translator: Translator) -> None:
    save_model(catalog.root / ".jobs-or-staging", translator.model, translator.tokenizer)
    assert catalog.names() == ["en-fr", "broken"]
    first = catalog.get("en-fr")
    assert catalog.get("en-fr") is first
    weights = catalog.root / "en-fr" / "model.safetensors"
    save_model(catalog.root / "en-fr", translator.model, translator.tokenizer)
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert catalog.get("en-fr") is not first


def test_compare_two_models(page: explorer.Page, catalog: ModelCatalog, translator: Translator) -> None:
    save_model(catalog.root / "en-fr-noattn", translator.model, translator.tokenizer)
    a_text, _, a_heatmap, b_text, _, b_heatmap = page.handlers["compare"]("en-fr", "en-fr-noattn", "red cat", 3,
                                                                          0.6, False)
    assert a_text == b_text and isinstance(a_heatmap, go.Figure) and isinstance(b_heatmap, go.Figure)


def test_the_app_builds_with_named_api_endpoints_listing_every_setting(catalog: ModelCatalog) -> None:
    demo = explorer.build_app()
    api_names = {dependency.get("api_name") for dependency in demo.config["dependencies"]}
    assert {"translate", "models"} <= api_names
    parameters = [p["parameter_name"] for p in demo.get_api_info()["named_endpoints"]["/translate"]["parameters"]]
    assert parameters == ["model", "text", *vars(explorer.DecodeSettings())]
    assert explorer.models_api()[0]["name"] == "en-fr"


def test_a_model_without_attention_gets_an_explanation_instead_of_a_heatmap(
        page: explorer.Page, catalog: ModelCatalog, translator: Translator) -> None:
    save_model(catalog.root / "en-fr-noattn", random_model(translator.tokenizer.vocab_size, "none"),
               translator.tokenizer)
    out = explore(page, "red cat", model="en-fr-noattn")
    assert not [t for t in out["greedy_heatmap"].data if isinstance(t, go.Heatmap)]
    assert "no attention" in out["greedy_heatmap"].layout.annotations[0].text
    assert out["second_text"] == out["nbest"][0][1]


def test_the_card_states_what_the_model_was_trained_on(catalog: ModelCatalog) -> None:
    from s2s.card import update_metrics

    update_metrics(catalog.root / "en-fr", {"data": {"train": ["data/tiny.train.tsv"]},
                                            "training_profile": {"source_pieces": {"p50": 6, "p95": 9, "p99": 11}}})
    text = explorer.model_markdown("en-fr")
    assert "tiny.train.tsv" in text and "11 pieces or fewer" in text


def test_two_hundred_translations_leave_no_files_behind(page: explorer.Page) -> None:
    import tempfile

    def files() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("s2s-*.json")) | set(explorer.exports.root.iterdir())

    before = files()
    for number in range(200):
        explore(page, f"the cat runs {number % 7}", beam_size=2, nbest=1)
    assert files() == before


def test_the_linked_view_gets_the_shown_sentence_of_both_columns(page: explorer.Page) -> None:
    out = explore(page, "the cat runs. the big dog eats.", nbest=3)
    linked, view = out["linked"], out["state"]
    assert [c["label"] for c in linked["columns"]] == ["Greedy", "Beam search"]
    assert linked["source_pieces"] == view.second["sentences"][0]["source_pieces"]
    greedy, beam = linked["columns"]
    assert greedy["hypotheses"] == view.greedy["sentences"][0]["hypotheses"] and greedy["trace"] is None
    assert len(beam["hypotheses"]) == 3 and beam["trace"] and beam["settings"]["strategy"] == "beam"
    assert all(len(position) == explorer.UI_ALTERNATIVES for position in beam["hypotheses"][0]["alternatives"])
    second = named(page, page.handlers["select_sentence"](view, False, False, 1))["linked"]
    assert second["source"] == view.second["sentences"][1]["source"]


def test_the_page_s_redecode_forces_the_picked_alternative_and_reports_errors(page: explorer.Page) -> None:
    linked = explore(page, "the big cat runs")["linked"]
    redecode = answered(page.linked.redecode)
    column = linked["columns"][1]
    hypothesis = column["hypotheses"][0]
    alternative = hypothesis["alternatives"][1][1]["id"]  # the runner-up at the second position
    request = {"model": "en-fr", "source": linked["source"], "ids": hypothesis["ids"], "position": 1,
               "replacement": alternative, "settings": column["settings"]}
    answer = redecode(request)
    edited = answer["sentence"]["hypotheses"][0]
    assert edited["ids"][:2] == [hypothesis["ids"][0], alternative] and edited["forced"] == 2
    assert len(edited["attention"]) == len(edited["ids"]) == len(edited["alternatives"])
    # Keeping greedy's own piece reproduces greedy's output: an unchanged word changes nothing.
    greedy = linked["columns"][0]["hypotheses"][0]
    same = redecode(request | {"ids": greedy["ids"], "replacement": greedy["ids"][1],
                               "settings": linked["columns"][0]["settings"]})
    assert same["sentence"]["hypotheses"][0]["ids"] == greedy["ids"]
    for bad, message in [({**request, "position": 99}, "position"), ({**request, "replacement": " "}, "type a word"),
                         ({**request, "model": "nope"}, "nope"), ({**request, "settings": {"beam_size": 0}}, "beam_size"),
                         ({**request, "replacement": "x" * 101}, "at most"), ("not a dict", "object"),
                         ({**request, "ids": "1 2"}, "ids")]:
        assert message in redecode(bad)["error"], bad


def test_the_classic_views_are_drawn_only_while_their_section_is_open(page: explorer.Page) -> None:
    closed = explore(page, "the big cat runs", classic=False)
    skipped = ("greedy_text", "second_text", "greedy_tokens", "nbest", "greedy_heatmap", "second_heatmap", "tree")
    assert all(closed[name] == gr.skip() for name in skipped)
    assert closed["linked"]["columns"] and closed["state"].second["text"]
    opened = named(page, page.handlers["redraw"](closed["state"], False, True))
    assert all(isinstance(opened[name], go.Figure) for name in ("greedy_heatmap", "second_heatmap", "tree"))
    assert opened["second_text"] == closed["state"].second["text"]


def test_a_shared_link_s_values_are_parsed_and_bad_ones_left_out() -> None:
    from s2s.ui.share import restored_values

    query = {"model": "en-fr", "text": "the cat", "beam_size": "8", "alpha": "0.3", "seed": "", "top_k": "lots",
             "split_sentences": "false", "nbest": "999", "strategy": "magic", "reference": "le chat"}
    values = restored_values(query, ["en-fr", "de-en"])
    assert values == {"model": "en-fr", "text": "the cat", "reference": "le chat", "beam_size": 8, "alpha": 0.3,
                      "seed": None, "split_sentences": False}
    assert restored_values({"model": "../../etc", "text": "x" * 10_000}, ["en-fr"]) == {"text": "x" * 5000}
    # Settings that are valid only together are kept together, whatever their order in the link.
    assert restored_values({"nbest": "16", "beam_size": "16"}, []) == {"nbest": 16, "beam_size": 16}
    assert restored_values({"nbest": "20", "strategy": "sample"}, []) == {"nbest": 20, "strategy": "sample"}


def test_the_page_s_redecode_steers_the_attention_at_one_step(page: explorer.Page) -> None:
    linked = explore(page, "the big cat runs")["linked"]
    greedy = linked["columns"][0]
    hypothesis = greedy["hypotheses"][0]
    width = len(linked["source_pieces"])
    request = {"model": "en-fr", "source": linked["source"], "ids": hypothesis["ids"], "position": 1,
               "steer": [0, 2], "settings": greedy["settings"]}
    sentence = answered(page.linked.redecode)(request)["sentence"]
    edited = sentence["hypotheses"][0]
    assert sentence["steered"] == [1] and edited["ids"][0] == hypothesis["ids"][0] and edited["forced"] == 1
    assert edited["attention"][1] == pytest.approx([0.5 if j in (0, 2) else 0.0 for j in range(width)])
    without_steer = {key: value for key, value in request.items() if key != "steer"}
    for bad, message in [({**request, "steer": []}, "click one or more"), ({**request, "steer": [width]}, "click"),
                         ({**without_steer, "weights": [1.0] * (width + 1)}, "weights, one per source piece"),
                         ({**request, "position": len(hypothesis["ids"])}, "position")]:
        assert message in answered(page.linked.redecode)(bad)["error"], bad


def test_the_page_s_redecode_takes_scaled_weights_too(page: explorer.Page) -> None:
    linked = explore(page, "the big cat runs")["linked"]
    greedy = linked["columns"][0]
    hypothesis = greedy["hypotheses"][0]
    own = hypothesis["attention"][1]
    scaled = [w * (0.0 if j == 0 else 1.0) for j, w in enumerate(own)]
    request = {"model": "en-fr", "source": linked["source"], "ids": hypothesis["ids"], "position": 1,
               "weights": scaled, "settings": greedy["settings"]}
    edited = answered(page.linked.redecode)(request)["sentence"]["hypotheses"][0]
    assert edited["attention"][1][0] == 0.0
    assert edited["attention"][1] == pytest.approx([w / sum(scaled) for w in scaled], abs=1e-6)
    assert "not all zero" in answered(page.linked.redecode)(request | {"weights": [0.0] * len(own)})["error"]


@pytest.mark.parametrize("pieces, words", [
    (["▁café", ",", "▁oui", "</s>"], ["café", ",", "oui", "</s>"]),  # punctuation is a word of its own
    (["▁Ma", "▁grand", "-", "mère", "▁", "à", "▁lettre", "s", "."], ["Ma", "grand-mère", "à", "lettres", "."]),
    (["▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "▁x", "</s>"], ["😀", "x", "</s>"]),  # bytes joined
    (["▁a", "▁", "</s>"], ["a", "</s>"]),  # a bare ▁ is never a word
    (["▁«", "▁oui", "▁»", "!", "!"], ["«", "oui", "»", "!", "!"]),
])
def test_one_rule_groups_pieces_into_words_for_every_view(pieces: list[str], words: list[str]) -> None:
    spans = word_spans(pieces)
    assert [span["text"] for span in spans] == words
    assert [i for span in spans for i in span["pieces"]] == list(range(len(pieces)))  # each piece once, in order


def test_every_hypothesis_carries_its_words(page: explorer.Page) -> None:
    linked = explore(page, "the big cat runs. A dog!")["linked"]
    assert linked["source_words"] == word_spans(linked["source_pieces"])
    for column in linked["columns"]:
        for hypothesis in column["hypotheses"]:
            assert hypothesis["words"] == word_spans(hypothesis["pieces"])
    assert [s["shown"] for s in linked["paragraph"]] == [True, False]


def test_a_model_s_own_examples_come_before_its_language_s(page: explorer.Page) -> None:
    assert explorer.example_samples("en-de")[0] == ["I will call you tomorrow."]  # German at work
    assert explorer.example_samples("en-fr") == [[text] for text in explorer.EXAMPLES["en"]]


def test_a_transformer_s_head_views_are_real_and_an_rnn_shows_none(translator: Translator, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    transformer = random_model(translator.tokenizer.vocab_size, scale=2.0, arch="transformer", encoder_layers=2,
                               decoder_layers=2, attention_heads=4, feedforward_dim=32)
    save_model(tmp_path / "en-fr", translator.model, translator.tokenizer)
    save_model(tmp_path / "en-xx-transformer", transformer, translator.tokenizer)
    service = Service(ModelCatalog(tmp_path, default="en-fr"))
    monkeypatch.setattr(explorer, "service", service)
    page = explorer.build_app().page
    linked = explore(page, "the big cat runs", model="en-xx-transformer", classic=False)["linked"]
    assert linked["heads"] == {"encoder_layers": 2, "decoder_layers": 2, "heads": 4, "split": None, "importance": {}}
    column = linked["columns"][1]
    best, source_length = column["hypotheses"][0], len(linked["source_pieces"])
    assert np.asarray(best["head_attention"]).shape == (2, 4, len(best["pieces"]), source_length)
    assert np.asarray(column["encoder_attention"]).shape == (2, 4, source_length, source_length)
    assert np.asarray(column["decoder_attention"]).shape == (2, 4, len(best["pieces"]), len(best["pieces"]))
    rnn = explore(page, "the big cat runs", classic=False)["linked"]
    assert rnn["heads"] is None and rnn["columns"][1]["hypotheses"][0]["head_attention"] is None

    # The Compare tab: a head picker for the Transformer's side only, and the heatmap of the head picked.
    assert explorer.head_choices("en-fr") == [] and explorer.head_picker("en-fr").visible is False
    choices = explorer.head_choices("en-xx-transformer")
    assert choices[0] == ("layer 2, average of heads", "1.avg") and len(choices) == 1 + 2 * 4 + 1
    outputs = explorer.compare_models("en-xx-transformer", "en-fr", "the big cat runs", 3, 0.6, False, "0.2", None)
    best = service.translate("en-xx-transformer", ["the big cat runs"], explorer.settings_from(
        {"strategy": "beam", "beam_size": 3, "alpha": 0.6}))[0]["sentences"][0]["hypotheses"][0]
    np.testing.assert_allclose(np.asarray(heatmap_trace(outputs[2]).z), best["head_attention"][0][2], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(heatmap_trace(explorer.heatmap_for(
        {"source_pieces": linked["source_pieces"], "hypotheses": [best]}, 0, "t", False, "1.avg")).z),
        best["attention"], atol=1e-6)

    # Heads switched off in the page: the sentence decoded again without them; an RNN says it has none.
    (switch,) = [f for f in server_functions(service) if f.__name__ == "switch_heads"]
    request = {"model": "en-xx-transformer", "source": "the big cat runs", "settings": column["settings"],
               "heads_off": "cross.1.0,cross.1.1"}
    answer = answered(switch)(request)
    assert answer["sentence"]["hypotheses"] and answer["sentence"]["encoder_attention"]
    assert "no heads" in answered(switch)(request | {"model": "en-fr"})["error"]
    assert "no cross head 7.0" in answered(switch)(request | {"heads_off": "cross.7.0"})["error"]
    assert "KIND.LAYER.HEAD" in answered(switch)(request | {"heads_off": "cross.one"})["error"]
