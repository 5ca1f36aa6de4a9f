"""The Transformer behind the one step interface: the cache, masking, search invariants per head,
heads switched off and steered, save and load; and RNN folders made before it still load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from s2s import search
from s2s.checkpoint import load_model, save_model
from s2s.heads import HeadSettings, parse_heads
from s2s.model import Dropout
from s2s.tokenizer import BOS_ID, EOS_ID, Tokenizer
from s2s.translator import Translator
from tests.conftest import random_model
from tests.test_search import batch_of

SOURCES = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]]
TRANSFORMER = {"arch": "transformer", "encoder_layers": 2, "decoder_layers": 2, "attention_heads": 4,
               "feedforward_dim": 32}


def transformer(vocab_size: int = 40, seed: int = 0, scale: float = 2.0):
    return random_model(vocab_size, seed=seed, scale=scale, **TRANSFORMER)


def test_incremental_decoding_with_the_cache_equals_a_full_forward_pass() -> None:
    model = transformer()
    source, lengths = batch_of(SOURCES)
    target_in = torch.tensor([[BOS_ID, 5, 6, 7, 8], [BOS_ID, 9, 9, 10, 3], [BOS_ID, 20, 21, 22, 23]])
    with torch.no_grad():
        full, cross = model(source, lengths, target_in)
        memory, state = model.encode(source, lengths)
        for t in range(target_in.size(1)):
            logits, state, step_cross = model.step(target_in[:, t:t + 1], state, memory)
            torch.testing.assert_close(logits[:, 0], full[:, t], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(step_cross[:, 0], cross[:, t], atol=1e-6, rtol=1e-5)
    assert state.length == target_in.size(1)


def test_changing_a_later_target_token_never_changes_an_earlier_position() -> None:
    model = transformer()
    source, lengths = batch_of(SOURCES[:1])
    target_in = torch.tensor([[BOS_ID, 5, 6, 7, 8, 9]])
    changed = target_in.clone()
    changed[0, 3] = 30
    with torch.no_grad():
        before, _ = model(source, lengths, target_in)
        after, _ = model(source, lengths, changed)
    assert torch.equal(before[0, :3], after[0, :3])
    assert not torch.allclose(before[0, 3:], after[0, 3:])


@pytest.mark.parametrize("overrides", [{}, TRANSFORMER], ids=["rnn", "transformer"])
def test_dropout_still_drops_in_training_and_is_the_identity_in_eval(overrides: dict) -> None:
    # model.Dropout hands its input back in eval mode without a module call; training must still drop.
    model = random_model(30, dropout=0.5, **overrides)
    dropouts = [module for module in model.modules() if isinstance(module, nn.Dropout)]
    assert dropouts and all(isinstance(module, Dropout) for module in dropouts)
    ones = torch.ones(1000)
    source, lengths = batch_of([[5, 6, 7, 8]])
    target_in = torch.tensor([[BOS_ID, 9, 10]])
    with torch.no_grad():
        assert all(dropout(ones) is ones for dropout in dropouts)
        evaluated = [model(source, lengths, target_in)[0] for _ in range(2)]
        model.train()
        assert all(bool((dropout(ones) == 0).any()) for dropout in dropouts)
        trained = [model(source, lengths, target_in)[0] for _ in range(2)]
    assert torch.equal(evaluated[0], evaluated[1])
    assert not torch.equal(trained[0], trained[1]) and not torch.equal(trained[0], evaluated[0])


def test_beam_of_one_equals_greedy() -> None:
    model = transformer()
    source, lengths = batch_of(SOURCES)
    max_lengths = torch.full((len(SOURCES),), 12)
    greedy = search.greedy(model, source, lengths, max_lengths)
    beams, _ = search.beam_search(model, source, lengths, max_lengths, beam_size=1)
    for g, (b,) in zip(greedy, beams):
        assert g.ids == b.ids
        assert g.score == pytest.approx(b.score, abs=1e-4)


def test_every_head_s_attention_follows_each_hypothesis_s_own_path_and_sums_to_one() -> None:
    model = transformer(30)
    source, lengths = batch_of([[5, 6, 7, 8], [9, 10]])
    beams, _ = search.beam_search(model, source, lengths, torch.tensor([8, 8]), beam_size=6, nbest=6)
    for sentence, hypotheses in enumerate(beams):
        assert len({tuple(h.ids) for h in hypotheses}) == len(hypotheses) > 1
        for hypothesis in hypotheses:
            heads = hypothesis.head_attention
            assert heads.shape == (2, 4, len(hypothesis.ids), int(lengths[sentence]))
            torch.testing.assert_close(heads.sum(-1), torch.ones(heads.shape[:-1]))
            torch.testing.assert_close(hypothesis.attention, heads[-1].mean(0))  # the one matrix shown
            (forced,) = search.force_decode(model, source[sentence:sentence + 1], lengths[sentence:sentence + 1],
                                            [hypothesis.ids])
            torch.testing.assert_close(heads, forced.head_attention, atol=1e-5, rtol=1e-4)
            assert hypothesis.token_logprobs == pytest.approx(forced.token_logprobs, abs=1e-4)


def test_no_head_switched_off_reproduces_the_plain_output_bit_for_bit() -> None:
    model = transformer()
    source, lengths = batch_of(SOURCES)
    plain, _ = search.beam_search(model, source, lengths, torch.full((3,), 10), beam_size=4)
    again, _ = search.beam_search(model, source, lengths, torch.full((3,), 10), beam_size=4, heads=HeadSettings())
    assert [[(h.ids, h.score) for h in b] for b in plain] == [[(h.ids, h.score) for h in b] for b in again]


def test_a_head_switched_off_is_zeroed_and_changes_the_output_where_it_carries_the_signal() -> None:
    # Make cross-attention head 0 of the last layer the only route from the source to the output:
    # its value projection passes the source on, every other head's is zero.
    model = transformer(30, scale=3.0)
    layer = model.decoder.layers[-1].cross_attention
    d_k = layer.d_k
    with torch.no_grad():
        for other in model.decoder.layers[:-1]:
            other.cross_attention.output.weight.zero_()
        layer.key_value.weight[model.config.embedding_dim + d_k:].zero_()  # values of heads 1..3
        layer.key_value.bias[model.config.embedding_dim + d_k:].zero_()
    source, lengths = batch_of([[5, 6, 7, 8], [9, 10, 11, 12]])
    with torch.no_grad():
        target_in = torch.tensor([[BOS_ID, 5], [BOS_ID, 5]])
        plain, _ = model(source, lengths, target_in)
        other_off, _ = model(source, lengths, target_in, heads=HeadSettings(off=(("cross", 1, 2),)))
        head_off, _ = model(source, lengths, target_in, heads=HeadSettings(off=(("cross", 1, 0),)))
    assert torch.allclose(plain, other_off, atol=1e-6)  # a head that carries nothing changes nothing
    assert not torch.allclose(plain[0], plain[1])  # the two sources are told apart ...
    torch.testing.assert_close(head_off[0], head_off[1])  # ... only through head 0


def test_steering_one_head_with_its_own_weights_reproduces_the_search() -> None:
    model = transformer()
    source, lengths = batch_of(SOURCES[1:2])
    (greedy,) = search.greedy(model, source, lengths, torch.tensor([10]))
    for layer, head in [(0, 1), (1, 3)]:
        heads = HeadSettings(steer_layer=layer, steer_head=head)
        own = greedy.head_attention[layer, head].unsqueeze(0)
        (again,) = search.greedy(model, source, lengths, torch.tensor([10]), steering=own, heads=heads)
        assert again.ids == greedy.ids
        assert again.token_logprobs == pytest.approx(greedy.token_logprobs, abs=1e-5)
    one_hot = torch.zeros(1, 1, int(lengths[0]))
    one_hot[0, 0, 2] = 1.0
    (steered,) = search.greedy(model, source, lengths, torch.tensor([10]), steering=one_hot,
                               heads=HeadSettings(steer_layer=1, steer_head=-1))
    torch.testing.assert_close(steered.head_attention[1, :, 0], one_hot[0, 0].expand(4, -1))


def test_heads_off_setting_is_parsed_and_checked_against_the_model() -> None:
    assert parse_heads(" cross.1.2, encoder.0.3 ,cross.1.2") == (("cross", 1, 2), ("encoder", 0, 3))
    for bad in ["cross.1", "self.0.0", "cross.a.1", "cross.-1.0"]:
        with pytest.raises(ValueError, match="KIND.LAYER.HEAD"):
            parse_heads(bad)
    with pytest.raises(ValueError, match="no decoder head 2.0"):
        HeadSettings(off=(("decoder", 2, 0),)).check(transformer().config)
    with pytest.raises(ValueError, match="RNN"):
        random_model(30).encode(*batch_of(SOURCES), heads=HeadSettings(off=(("cross", 0, 0),)))


def test_save_then_load_gives_identical_outputs(tokenizer: Tokenizer, tmp_path: Path) -> None:
    model = transformer(tokenizer.vocab_size)
    save_model(tmp_path, model, tokenizer, fp16=False)
    loaded, _ = load_model(tmp_path)
    assert loaded.config.arch == "transformer"
    first = Translator(model, tokenizer).translate("red cat sleeps", beam_size=3, nbest=3)
    second = Translator(loaded, tokenizer).translate("red cat sleeps", beam_size=3, nbest=3)
    for a, b in zip(first["sentences"][0]["hypotheses"], second["sentences"][0]["hypotheses"]):
        assert a["ids"] == b["ids"] and a["score"] == b["score"] and a["head_attention"] == b["head_attention"]


def test_a_translation_shows_every_head_and_both_self_attentions(tokenizer: Tokenizer) -> None:
    translator = Translator(transformer(tokenizer.vocab_size), tokenizer)
    sentence = translator.translate("red cat sleeps", beam_size=3)["sentences"][0]
    best, source_length = sentence["hypotheses"][0], len(sentence["source_pieces"])
    target_length = len(best["pieces"])
    assert torch.tensor(best["head_attention"]).shape == (2, 4, target_length, source_length)
    encoder = torch.tensor(sentence["encoder_attention"])
    decoder = torch.tensor(sentence["decoder_attention"])
    assert encoder.shape == (2, 4, source_length, source_length)
    assert decoder.shape == (2, 4, target_length, target_length)
    torch.testing.assert_close(decoder.sum(-1), torch.ones(2, 4, target_length))
    assert bool((decoder.triu(1) == 0).all())  # no position reads a later one
    (plain,) = translator.translate_batch(["red cat sleeps"], beam_size=3, details=False)
    assert plain["sentences"][0]["encoder_attention"] is None and plain["sentences"][0]["decoder_attention"] is None
    assert plain["sentences"][0]["trace"] is None and plain["sentences"][0]["hypotheses"][0]["alternatives"] == []
    assert plain["sentences"][0]["hypotheses"][0]["ids"] == best["ids"]  # evaluation skips only the details
    off = translator.translate("red cat sleeps", beam_size=3, heads_off="cross.1.0,cross.1.1,cross.1.2,cross.1.3")
    assert off["settings"]["heads_off"]
    rnn = Translator(random_model(tokenizer.vocab_size), tokenizer).translate("red cat sleeps")["sentences"][0]
    assert rnn["hypotheses"][0]["head_attention"] is None and rnn["encoder_attention"] is None
    with pytest.raises(ValueError, match="no heads"):
        Translator(random_model(tokenizer.vocab_size), tokenizer).translate("red cat", heads_off="cross.0.0")


@pytest.mark.parametrize("settings, keeps_attention", [({"strategy": "greedy"}, False),
                                                        ({"beam_size": 3, "coverage_penalty": 0.0}, False),
                                                        ({"beam_size": 3, "coverage_penalty": 0.4}, True)])
def test_a_text_output_keeps_attention_only_where_the_coverage_penalty_ranks_with_it(
        tokenizer: Tokenizer, settings: dict, keeps_attention: bool) -> None:
    translator = Translator(transformer(tokenizer.vocab_size), tokenizer)
    texts = ["red cat sleeps", "a dog runs in the park", "the cat"]
    shown = translator.translate_batch(texts, **settings)
    plain = translator.translate_batch(texts, details=False, **settings)
    for full, text_only in zip(shown, plain):
        (full_best,), (text_best,) = full["sentences"][0]["hypotheses"], text_only["sentences"][0]["hypotheses"]
        assert text_best["ids"] == full_best["ids"] and text_only["text"] == full["text"]
        assert (text_best["head_attention"] is not None) == keeps_attention
        assert (text_best["attention"] is not None) == keeps_attention
        assert full_best["attention"] is not None


# Recorded with the code before the Transformer (commit 9800c25): a folder whose config.json does
# not name its architecture is the RNN, and decodes exactly as it did: the same ids, and the same
# numbers up to float32 rounding, which differs between CPUs (a sum of twelve log-probabilities
# came out 1.9e-5 apart on an AMX Xeon host, not the one it was recorded on).
OLD_RNN_OUTPUT = {"ids": [389, 2403, 936, 2362, 395, 802, 1166, 295, 1339, 1728, 260, 3], "score": -4.511645,
                  "attention_row0": [0.096236, 0.036921, 0.011384, 0.003048, 0.004057, 0.003403, 0.001037, 0.004177,
                                     0.003996, 0.003718, 0.00955, 0.053807, 0.768666]}


def test_an_rnn_folder_made_before_the_transformer_loads_and_translates_identically() -> None:
    folder = Path(__file__).resolve().parent.parent / "checkpoints" / "en-fr"
    assert "arch" not in (folder / "config.json").read_text()
    best = Translator.load(folder).translate("The old man gave his granddaughter a red bicycle.",
                                             beam_size=5)["sentences"][0]["hypotheses"][0]
    assert best["ids"] == OLD_RNN_OUTPUT["ids"] and best["ids"][-1] == EOS_ID
    assert best["score"] == pytest.approx(OLD_RNN_OUTPUT["score"], abs=1e-4)
    assert best["attention"][0] == pytest.approx(OLD_RNN_OUTPUT["attention_row0"], abs=1e-5)


def test_saliency_and_scoring_run_on_a_transformer_beside_its_shown_attention(tokenizer: Tokenizer) -> None:
    translator = Translator(transformer(tokenizer.vocab_size), tokenizer)
    best = translator.translate("red cat sleeps", strategy="greedy")["sentences"][0]["hypotheses"][0]
    result = translator.saliency("red cat sleeps", best["ids"], "integrated_gradients", steps=8)
    relevance = torch.tensor(result["relevance"])
    torch.testing.assert_close(relevance.sum(-1), torch.ones(len(best["ids"])))
    torch.testing.assert_close(torch.tensor(result["attention"]), torch.tensor(best["attention"]), atol=1e-5, rtol=0)
    scored = translator.score("red cat sleeps", best["ids"][:-1])["hypotheses"][0]
    assert scored["score"] == pytest.approx(best["score"], abs=1e-4)
    assert torch.tensor(scored["head_attention"]).shape == torch.tensor(best["head_attention"]).shape


def test_heads_switched_off_leave_the_shown_average_and_the_coverage_penalty() -> None:
    model = transformer(scale=3.0)
    source, lengths = batch_of([[5, 6, 7, 8]])
    off = HeadSettings(off=(("cross", 1, 0), ("cross", 1, 3), ("cross", 0, 1)))
    scoring = search.Scoring(alpha=0.6, beta=0.5, heads_off=off.cross_off_in_layer(1))
    (hypotheses,), _ = search.beam_search(model, source, lengths, torch.tensor([8]), 3, 3, scoring, heads=off)
    for hypothesis in hypotheses:
        shown = hypothesis.head_attention[1, [1, 2]].mean(0)  # the last layer's heads that are on
        torch.testing.assert_close(hypothesis.attention, shown)
        assert hypothesis.normalized_score == pytest.approx(
            hypothesis.score / search.length_penalty(len(hypothesis.ids), 0.6)
            + search.coverage_penalty(shown, 0.5), abs=1e-5)
