"""Every folder in checkpoints/ loads and translates: non-empty output in the expected script,
attention shaped like the pieces (or none, for a model without attention)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

import s2s

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = sorted(p for p in (ROOT / "checkpoints").iterdir() if (p / "config.json").exists()) \
    if (ROOT / "checkpoints").is_dir() else []
EXAMPLES = json.loads((ROOT / "assets" / "examples.json").read_text(encoding="utf-8"))


def latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(unicodedata.name(c, "").startswith("LATIN") for c in letters) / max(1, len(letters))


def test_the_default_model_ships() -> None:
    assert (ROOT / "checkpoints" / "en-fr" / "config.json").exists()


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_shipped_model_translates_with_greedy_and_beam(folder: Path) -> None:
    translator = s2s.load(folder)
    assert (folder / "README.md").exists() and (folder / "metrics.json").exists()
    sentences = EXAMPLES.get(folder.name.split("-")[0], EXAMPLES["en"])[:3]
    for strategy in ("greedy", "beam"):
        for full in translator.translate_batch(sentences, strategy=strategy, beam_size=5, nbest=2):
            (result,) = full["sentences"]
            hypothesis = result["hypotheses"][0]
            assert hypothesis["text"].strip(), result["source"]
            assert latin_share(hypothesis["text"]) > 0.9, hypothesis["text"]
            assert len(hypothesis["pieces"]) == len(hypothesis["token_logprobs"])
            if translator.has_attention:
                assert len(hypothesis["attention"]) == len(hypothesis["pieces"])
                assert {len(row) for row in hypothesis["attention"]} == {len(result["source_pieces"])}
            else:
                assert hypothesis["attention"] is None


def test_an_input_far_from_the_training_data_gets_a_note() -> None:
    translator = s2s.load(ROOT / "checkpoints" / "en-fr")
    assert translator.translate("The cat is sleeping on the red chair.")["warnings"] == []
    german = translator.translate("Der Hund schläft auf dem Sofa und träumt.")
    assert any("rare or unseen in training" in note for note in german["warnings"])
    longest = translator.metrics["training_profile"]["source_pieces"]["p99"]
    long = translator.translate("I think that " * (longest // 3 + 2) + "it rains.", strategy="greedy")
    assert any("more than 99% of the training sentences" in note for note in long["warnings"])


def test_the_paragraph_that_lost_a_sentence_comes_back_whole() -> None:
    paragraph = ("I went to the market this morning. I bought apples and bread. "
                 "Then I went home and cooked dinner for my family.")
    translator = s2s.load(ROOT / "checkpoints" / "en-fr")
    result = translator.translate(paragraph, strategy="beam", beam_size=5)
    assert [s["source"] for s in result["sentences"]] == [
        "I went to the market this morning.", "I bought apples and bread.",
        "Then I went home and cooked dinner for my family."]
    for sentence in result["sentences"]:
        best = sentence["hypotheses"][0]
        assert best["text"] and best["text"] in result["text"]
        assert len(best["attention"]) == len(best["pieces"])
        assert {len(row) for row in best["attention"]} == {len(sentence["source_pieces"])}
    assert "pommes" in result["text"]  # the middle sentence, which was lost before
