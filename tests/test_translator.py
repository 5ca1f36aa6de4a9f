"""The public API: results are complete and JSON-serialisable; bad input is handled clearly."""

from __future__ import annotations

import json

import pytest

from s2s.translator import MAX_INPUT_CHARS, Translator


def test_result_is_json_serialisable_and_complete(translator: Translator) -> None:
    result = translator.translate("the big cat runs", strategy="beam", beam_size=4, nbest=3)
    assert json.loads(json.dumps(result)) == result
    assert result["source_pieces"][-1] == "</s>"
    assert len(result["hypotheses"]) == 3
    scores = [h["normalized_score"] for h in result["hypotheses"]]
    assert scores == sorted(scores, reverse=True)
    for hypothesis in result["hypotheses"]:
        assert len(hypothesis["pieces"]) == len(hypothesis["ids"]) == len(hypothesis["token_logprobs"])
        assert len(hypothesis["attention"]) == len(hypothesis["pieces"])
        assert all(len(row) == len(result["source_pieces"]) for row in hypothesis["attention"])
        assert hypothesis["score"] == pytest.approx(sum(hypothesis["token_logprobs"]), abs=1e-3)
    assert result["trace"] and result["trace"][0]["alive"]


def test_translate_batch_keeps_input_order_and_matches_single_calls(translator: Translator) -> None:
    texts = ["the cat", "", "red blue green bird eats", "dog"]
    batch = translator.translate_batch(texts, strategy="greedy", batch_size=2)
    assert [r["source"] for r in batch] == texts
    for text, result in zip(texts, batch):
        single = translator.translate(text, strategy="greedy")
        assert [h["ids"] for h in single["hypotheses"]] == [h["ids"] for h in result["hypotheses"]]


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_input_gives_an_empty_result_with_a_message(translator: Translator, text: str) -> None:
    result = translator.translate(text)
    assert result["hypotheses"] == []
    assert "Empty input" in result["message"]


@pytest.mark.parametrize("text", ["😀🎉 the cat 🐈", "مرحبا بالعالم", "a\x00b\x07c\u200b", "<script>alert(1)</script>",
                                  "日本語のテキスト", "\U0010ffff"])
def test_any_unicode_translates(translator: Translator, text: str) -> None:
    result = translator.translate(text, strategy="beam", beam_size=3)
    assert result["hypotheses"], result
    assert len(result["hypotheses"][0]["attention"][0]) == len(result["source_pieces"])


def test_long_input_is_truncated_with_a_warning(translator: Translator) -> None:
    words = "the big red cat runs " * 200
    result = translator.translate(words, strategy="greedy")
    assert len(result["source_pieces"]) == translator.model.config.max_source_len
    assert any("cut off" in warning for warning in result["warnings"])
    very_long = translator.translate("x" * (MAX_INPUT_CHARS * 50), strategy="greedy")
    assert any("characters" in warning for warning in very_long["warnings"])
    assert very_long["hypotheses"]


@pytest.mark.parametrize("setting, value", [
    ("beam_size", 0), ("beam_size", 1000), ("beam_size", 2.5), ("beam_size", True), ("nbest", 0),
    ("temperature", -1.0), ("temperature", 0.0), ("top_p", 0.0), ("top_p", 1.5), ("top_k", -1),
    ("alpha", float("nan")), ("alpha", -0.1), ("max_length_ratio", 0.0), ("no_repeat_ngram", -2),
    ("strategy", "viterbi"), ("seed", -1), ("prefix", 5),
])
def test_out_of_range_settings_raise_a_value_error_naming_the_setting(translator: Translator, setting: str,
                                                                     value: object) -> None:
    with pytest.raises(ValueError, match=setting):
        translator.translate("the cat", **{setting: value})


def test_nbest_cannot_exceed_the_beam(translator: Translator) -> None:
    with pytest.raises(ValueError, match="nbest"):
        translator.translate("the cat", strategy="beam", beam_size=3, nbest=4)


def test_unknown_setting_is_an_error(translator: Translator) -> None:
    with pytest.raises(ValueError, match="beam_width"):
        translator.translate("the cat", beam_width=3)


def test_non_string_input_is_an_error(translator: Translator) -> None:
    with pytest.raises(ValueError, match="string"):
        translator.translate(None)  # type: ignore[arg-type]


def test_prefix_is_kept_at_the_start(translator: Translator) -> None:
    result = translator.translate("the cat", strategy="beam", beam_size=3, prefix="red dog")
    prefix_pieces = translator.tokenizer.pieces(translator.tokenizer.encode("red dog"))
    assert result["hypotheses"][0]["pieces"][:len(prefix_pieces)] == prefix_pieces


def test_sampling_with_a_seed_is_reproducible(translator: Translator) -> None:
    first = translator.translate("the cat", strategy="sample", nbest=3, seed=11, temperature=2.0)
    second = translator.translate("the cat", strategy="sample", nbest=3, seed=11, temperature=2.0)
    assert [h["ids"] for h in first["hypotheses"]] == [h["ids"] for h in second["hypotheses"]]
    assert len(first["hypotheses"]) == 3
