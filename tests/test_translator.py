"""The public API: results are complete and JSON-serialisable; bad input is handled clearly."""

from __future__ import annotations

import json

import pytest
import torch

from s2s.search import length_penalty
from s2s.tokenizer import EOS_ID
from s2s.translator import MAX_INPUT_CHARS, Translator, make_settings, without_control_characters
from tests.conftest import assert_same_sentences, only_sentence, random_model


def test_result_is_json_serialisable_and_complete(translator: Translator) -> None:
    full = translator.translate("the big cat runs", strategy="beam", beam_size=4, nbest=3)
    assert json.loads(json.dumps(full)) == full
    result = only_sentence(full)
    assert full["text"] == result["hypotheses"][0]["text"]
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
        assert_same_sentences(result["sentences"], single["sentences"])


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_input_gives_an_empty_result_with_a_message(translator: Translator, text: str) -> None:
    result = translator.translate(text)
    assert result["sentences"] == [] and result["text"] == ""
    assert "Empty input" in result["message"]


@pytest.mark.parametrize("text", ["😀🎉 the cat 🐈", "مرحبا بالعالم", "a\x00b\x07c\u200b", "<script>alert(1)</script>",
                                  "日本語のテキスト", "\U0010ffff"])
def test_any_unicode_translates(translator: Translator, text: str) -> None:
    result = only_sentence(translator.translate(text, strategy="beam", beam_size=3))
    assert result["hypotheses"], result
    assert len(result["hypotheses"][0]["attention"][0]) == len(result["source_pieces"])


def test_long_input_is_truncated_with_a_warning(translator: Translator) -> None:
    words = "the big red cat runs " * 200
    result = translator.translate(words, strategy="greedy")
    assert len(only_sentence(result)["source_pieces"]) == translator.model.config.max_source_len
    assert any("cut off" in warning for warning in result["warnings"])


def test_a_long_sentence_in_a_paragraph_is_cut_with_a_warning_naming_it(translator: Translator) -> None:
    result = translator.translate("The cat runs. " + "the big red cat runs " * 100 + ". The dog eats.")
    assert len(result["sentences"]) == 3 and all(s["hypotheses"] for s in result["sentences"])
    assert [w.split(" has ")[0] for w in result["warnings"]] == ["Sentence 2"]


@pytest.mark.parametrize("text, limit", [("the cat runs. " * 430, "characters"), ("Cat. " * 51, "sentences")])
def test_input_over_the_limits_gets_a_message_and_no_translation(translator: Translator, text: str,
                                                                 limit: str) -> None:
    result = translator.translate(text, strategy="greedy")
    assert result["sentences"] == [] and result["text"] == ""
    assert limit in result["message"] and "at most" in result["message"]
    assert len("the cat runs. " * 430) > MAX_INPUT_CHARS


def test_a_paragraph_is_translated_sentence_by_sentence(translator: Translator) -> None:
    paragraph = "The big cat runs. The red dog eats! Does the small bird sleep?"
    result = translator.translate(paragraph, strategy="beam", beam_size=3)
    assert [s["source"] for s in result["sentences"]] == ["The big cat runs.", "The red dog eats!",
                                                          "Does the small bird sleep?"]
    for sentence in result["sentences"]:
        alone = translator.translate(sentence["source"], strategy="beam", beam_size=3)
        assert_same_sentences([sentence], alone["sentences"])
    assert result["text"] == " ".join(s["hypotheses"][0]["text"] for s in result["sentences"])
    whole = translator.translate(paragraph, strategy="beam", beam_size=3, split_sentences=False)
    assert len(whole["sentences"]) == 1


@pytest.mark.parametrize("setting, value", [
    ("beam_size", 0), ("beam_size", 1000), ("beam_size", 2.5), ("beam_size", True), ("nbest", 0),
    ("temperature", -1.0), ("temperature", 0.0), ("top_p", 0.0), ("top_p", 1.5), ("top_k", -1),
    ("alpha", float("nan")), ("alpha", -0.1), ("max_length_ratio", 0.0), ("no_repeat_ngram", -2),
    ("strategy", "viterbi"), ("seed", -1), ("prefix", 5), ("coverage_penalty", -0.2),
    ("coverage_penalty", float("inf")), ("min_length_ratio", 3.0), ("split_sentences", "yes"),
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
    result = only_sentence(translator.translate("the cat", strategy="beam", beam_size=3, prefix="red dog"))
    prefix_pieces = translator.tokenizer.pieces(translator.tokenizer.encode("red dog"))
    assert result["hypotheses"][0]["pieces"][:len(prefix_pieces)] == prefix_pieces


def test_sampling_with_a_seed_is_reproducible(translator: Translator) -> None:
    first = translator.translate("the cat", strategy="sample", nbest=3, seed=11, temperature=2.0)
    second = translator.translate("the cat", strategy="sample", nbest=3, seed=11, temperature=2.0)
    assert first["sentences"] == second["sentences"]
    assert len(only_sentence(first)["hypotheses"]) == 3


@pytest.fixture
def stops_early(tokenizer) -> Translator:
    """A tiny model whose </s> logit is raised so far that beam search ends after one token."""
    model = random_model(tokenizer.vocab_size, scale=1.0)
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] += 10.0
    return Translator(model, tokenizer, name="stops-early")


LONG_SOURCE = "the big red cat runs and the small dog sleeps"


def test_coverage_penalty_zero_is_the_search_without_it(translator: Translator) -> None:
    from s2s import search
    from s2s.data import pad

    zero = only_sentence(translator.translate(LONG_SOURCE, strategy="beam", beam_size=4, nbest=4, alpha=0.6,
                                              coverage_penalty=0.0, split_sentences=False))
    ids = translator.tokenizer.encode(LONG_SOURCE) + [EOS_ID]
    (plain,), _ = search.beam_search(translator.model, pad([ids]), torch.tensor([len(ids)]),
                                     torch.tensor([2 * len(ids) + 10]), beam_size=4, nbest=4,
                                     scoring=search.Scoring(alpha=0.6))
    assert [h["ids"] for h in zero["hypotheses"]] == [h.ids for h in plain]
    assert [h["score"] for h in zero["hypotheses"]] == [h.score for h in plain]
    for hypothesis in zero["hypotheses"]:
        assert hypothesis["normalized_score"] == hypothesis["score"] / length_penalty(len(hypothesis["ids"]), 0.6)


def test_a_positive_coverage_penalty_keeps_a_collapsing_output_going(stops_early: Translator) -> None:
    collapsed = only_sentence(stops_early.translate(LONG_SOURCE, strategy="beam", beam_size=8))["hypotheses"][0]
    assert len(collapsed["ids"]) == 2
    covered = only_sentence(stops_early.translate(LONG_SOURCE, strategy="beam", beam_size=8,
                                                  coverage_penalty=2.0))["hypotheses"][0]
    assert len(covered["ids"]) > 10
    attention = torch.tensor(covered["attention"])
    expected = covered["score"] / length_penalty(len(covered["ids"]), 0.6) + \
        2.0 * float(attention.sum(0).clamp(max=1.0).log().sum())
    assert covered["normalized_score"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_min_length_ratio_forbids_ending_early(stops_early: Translator, strategy: str) -> None:
    result = only_sentence(stops_early.translate(LONG_SOURCE, strategy=strategy, beam_size=4, min_length_ratio=1.0))
    for hypothesis in result["hypotheses"]:
        assert len(hypothesis["ids"]) - 1 >= len(result["source_pieces"])
        assert hypothesis["ids"][-1] == EOS_ID


def test_coverage_penalty_on_a_model_without_attention_says_it_has_no_effect(tokenizer) -> None:
    translator = Translator(random_model(tokenizer.vocab_size, attention="none"), tokenizer)
    result = translator.translate("the cat", coverage_penalty=0.4)
    assert any("no attention" in warning for warning in result["warnings"])
    assert translator.translate("the cat")["warnings"] == []  # the default says nothing


def test_concurrent_requests_are_batched_and_equal_decoding_each_alone(translator: Translator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from s2s.batching import RequestBatcher
    from s2s.translator import make_settings

    batcher = RequestBatcher(max_batch=16, max_wait=0.05)
    calls = []
    original = translator.translate_batch
    translator.translate_batch = lambda texts, settings, **kw: calls.append(len(texts)) or original(texts, settings)
    texts = ["the cat", "red blue green bird eats. the dog runs", "dog", "big small cat sleeps", "", "the red bird"]
    settings = [make_settings(strategy="beam", beam_size=3, nbest=2), make_settings(strategy="greedy")]
    jobs = [(text, s) for text in texts for s in settings]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: batcher.translate_all([(translator, *job)])[0], jobs))
    translator.translate_batch = original
    assert max(calls) > 1  # requests really shared a decoding pass
    for (text, s), result in zip(jobs, results):
        alone = translator.translate(text, s)
        assert result["source"] == text and result["text"] == alone["text"]
        assert_same_sentences(result["sentences"], alone["sentences"])
    with pytest.raises(ValueError, match="string"):
        batcher.translate_all([(translator, None, settings[0])])  # type: ignore[list-item]
    # Asked together (the page's two columns), in order, with a sampled job decoded alone.
    together = [(translator, "the cat", s) for s in (*settings, make_settings(strategy="sample", seed=3))]
    for (_, text, s), result in zip(together, batcher.translate_all(together)):
        assert_same_sentences(result["sentences"], translator.translate(text, s)["sentences"])


def test_redecoding_with_the_output_s_own_prefix_reproduces_it(translator: Translator) -> None:
    greedy = only_sentence(translator.translate("the big cat runs", strategy="greedy"))["hypotheses"][0]
    for position in range(len(greedy["ids"]) - 1):
        again = translator.redecode("the big cat runs", greedy["ids"][:position], strategy="greedy")
        assert again["hypotheses"][0]["ids"] == greedy["ids"]
        assert again["hypotheses"][0]["forced"] == position


def test_redecode_equals_translate_with_the_same_prefix(translator: Translator) -> None:
    prefix_ids = translator.tokenizer.encode("cat red")
    redecoded = translator.redecode("the big cat runs", prefix_ids, strategy="beam", beam_size=3, nbest=3)
    translated = only_sentence(translator.translate("the big cat runs", strategy="beam", beam_size=3, nbest=3,
                                                    prefix="cat red"))
    assert [h["ids"] for h in redecoded["hypotheses"]] == [h["ids"] for h in translated["hypotheses"]]
    assert all(h["ids"][:len(prefix_ids)] == prefix_ids and h["forced"] == len(prefix_ids)
               for h in redecoded["hypotheses"])
    assert redecoded["prefix"] == translated["prefix"] == "cat red"


def test_an_edit_is_an_alternative_piece_or_a_typed_word_tokenised_as_a_word(translator: Translator) -> None:
    ids = only_sentence(translator.translate("the big cat runs", strategy="greedy"))["hypotheses"][0]["ids"]
    assert translator.edited_prefix(ids, 1, 17) == [ids[0], 17]
    assert translator.edited_prefix(ids, 0, " blue ") == translator.tokenizer.encode("blue")
    assert translator.tokenizer.pieces(translator.edited_prefix(ids, 0, "blue"))[0].startswith("▁")


@pytest.mark.parametrize("call, message", [
    (lambda t: t.edited_prefix([5, 6, EOS_ID], 3, 7), "position"),
    (lambda t: t.edited_prefix([5, 6, EOS_ID], -1, 7), "position"),
    (lambda t: t.edited_prefix([5, 6, EOS_ID], 1, "  "), "type a word"),
    (lambda t: t.edited_prefix([5, 6, EOS_ID], 1, None), "replacement"),
    (lambda t: t.redecode("the cat", [EOS_ID]), "cannot be forced"),
    (lambda t: t.redecode("the cat", [10 ** 6]), "cannot be forced"),
    (lambda t: t.redecode("the cat", ["5"]), "piece ids"),
    (lambda t: t.redecode("  ", [5]), "non-empty"),
    (lambda t: t.redecode("the cat", [5], alternatives=21), "alternatives"),
])
def test_bad_edits_get_clear_errors(translator: Translator, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(translator)


def test_steering_renormalises_weights_and_marks_the_steered_steps(translator: Translator) -> None:
    sentence = only_sentence(translator.translate("the big cat runs", strategy="greedy"))
    width = len(sentence["source_pieces"])
    weights = [2.0, 2.0] + [0.0] * (width - 2)
    steered = translator.redecode("the big cat runs", [], strategy="greedy", steering={1: weights})
    assert steered["steered"] == [1]
    assert steered["hypotheses"][0]["attention"][1] == pytest.approx([0.5, 0.5] + [0.0] * (width - 2))


@pytest.mark.parametrize("steering, message", [
    ({0: [1.0]}, "weights, one per source piece"),
    ({0: "abc"}, "weights, one per source piece"),
    ({-1: None}, "output positions"),
    ({"0": None}, "output positions"),
    ({0: "nan"}, "weights"),
])
def test_bad_steering_gets_a_clear_error(translator: Translator, steering: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        translator.redecode("the big cat runs", [], steering=steering)


def test_steering_weights_must_be_finite_non_negative_and_not_all_zero(translator: Translator) -> None:
    width = len(only_sentence(translator.translate("the big cat runs", strategy="greedy"))["source_pieces"])
    for weights in ([float("nan")] * width, [-1.0] + [1.0] * (width - 1), [0.0] * width, [float("inf")] * width):
        with pytest.raises(ValueError, match="finite, non-negative and not all zero"):
            translator.redecode("the big cat runs", [], steering={0: weights})


def test_steering_is_refused_for_a_model_without_attention(tokenizer) -> None:
    plain = Translator(random_model(tokenizer.vocab_size, "none"), tokenizer)
    with pytest.raises(ValueError, match="no attention"):
        plain.redecode("the big cat runs", [], steering={0: [1.0] * 4})


def test_scoring_the_model_s_own_beam_output_reproduces_its_score(translator: Translator) -> None:
    best = only_sentence(translator.translate("the big cat runs", strategy="beam", beam_size=4))["hypotheses"][0]
    scored = translator.score("the big cat runs", best["ids"], strategy="beam", beam_size=4)["hypotheses"][0]
    assert scored["ids"] == best["ids"]
    assert scored["score"] == pytest.approx(best["score"], abs=1e-4)
    assert scored["normalized_score"] == pytest.approx(best["normalized_score"], abs=1e-4)
    by_text = translator.score("the big cat runs", "cat red")["hypotheses"][0]
    assert by_text["ids"] == translator.tokenizer.encode("cat red") + [EOS_ID]
    assert len(by_text["attention"]) == len(by_text["alternatives"]) == len(by_text["ids"])


@pytest.mark.parametrize("target, message", [("", "Type a translation"), ("   ", "Type a translation"),
                                             ("x" * 10_000, "at most 5,000"), ([EOS_ID], "no pieces"),
                                             ([10 ** 6], "no pieces"), (3.5, "target must be")])
def test_bad_translations_to_score_get_clear_errors(translator: Translator, target, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        translator.score("the big cat runs", target)


def test_the_translator_decodes_without_dropout_and_leaves_the_model_s_mode_alone(tokenizer) -> None:
    # Training validates with the model it is training: the translator must decode without
    # dropout and hand the model back still in training mode.
    model = random_model(tokenizer.vocab_size, scale=3.0, dropout=0.5).train()
    translator = Translator(model, tokenizer)
    first = translator.translate("the big cat runs", strategy="beam", beam_size=3)
    assert model.training
    again = translator.translate("the big cat runs", strategy="beam", beam_size=3)
    scored = translator.score("the big cat runs", first["sentences"][0]["hypotheses"][0]["ids"])
    assert model.training
    assert_same_sentences(first["sentences"], again["sentences"])
    model.eval()
    assert_same_sentences(first["sentences"], translator.translate("the big cat runs", strategy="beam",
                                                                    beam_size=3)["sentences"])
    assert scored["hypotheses"][0]["score"] == pytest.approx(first["sentences"][0]["hypotheses"][0]["score"], abs=1e-4)


def test_control_characters_typed_in_a_word_are_removed_and_never_reach_the_output(translator: Translator) -> None:
    typed = "c\x00a\x1bt\u200b"
    assert translator.edited_prefix([5, 6, EOS_ID], 1, typed) == translator.edited_prefix([5, 6, EOS_ID], 1, "cat")
    assert without_control_characters(typed) == ("cat", "3 control or invisible character(s) were removed from "
                                                         "the typed word.")
    assert without_control_characters("chat noir") == ("chat noir", None)
    with pytest.raises(ValueError, match="type a word"):
        translator.edited_prefix([5, 6, EOS_ID], 1, "\x00\x07")


def test_a_search_over_the_memory_budget_is_split_or_refused_before_it_starts(translator: Translator) -> None:
    texts = ["the big cat runs", "red bird", "dog eats the small green bird", "the cat"]
    settings = make_settings(strategy="beam", beam_size=4, nbest=2)
    whole = translator.translate_batch(texts, settings)
    longest = max(len(translator.tokenizer.encode(t)) for t in texts) + 1
    translator.memory_budget = translator.decode_bytes(settings, 1, longest)  # one sentence at a time
    split = translator.translate_batch(texts, settings)
    for a, b in zip(split, whole):
        assert_same_sentences(a["sentences"], b["sentences"])
    translator.memory_budget = translator.decode_bytes(settings, 1, 2) - 1  # not even the shortest
    with pytest.raises(ValueError, match="over this server's budget .* lower the beam size"):
        translator.translate("the big cat runs", settings)
    with pytest.raises(ValueError, match="over this server's budget"):
        translator.redecode("the big cat runs", [5], settings)
