"""Search is correct: greedy, beam (exact on enumerable models), attention along each path."""

from __future__ import annotations

import itertools

import pytest
import torch

from s2s import search
from s2s.data import pad
from s2s.model import EncoderDecoder
from s2s.precision import with_weights
from s2s.tokenizer import EOS_ID
from tests.conftest import random_model

ATTENTIONS = ["bahdanau", "luong-dot", "luong-general", "none"]


def batch_of(sources: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded source ids with </s> appended, and their lengths."""
    return pad([s + [EOS_ID] for s in sources]), torch.tensor([len(s) + 1 for s in sources])


SOURCES = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]]


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_beam_of_one_equals_greedy(attention: str, rnn_type: str) -> None:
    model = random_model(40, attention, rnn_type, scale=2.0)
    source, lengths = batch_of(SOURCES)
    max_lengths = torch.full((len(SOURCES),), 12)
    greedy = search.greedy(model, source, lengths, max_lengths)
    beams, _ = search.beam_search(model, source, lengths, max_lengths, beam_size=1, scoring=search.Scoring(alpha=0.0))
    for g, (b,) in zip(greedy, beams):
        assert g.ids == b.ids
        assert g.score == pytest.approx(b.score, abs=1e-4)


def all_outputs(tokens: list[int], max_length: int) -> list[list[int]]:
    """Every non-empty output that ends with </s> and has at most ``max_length`` tokens."""
    return [list(body) + [EOS_ID] for n in range(1, max_length) for body in itertools.product(tokens, repeat=n)]


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_no_output_is_empty_even_when_the_model_prefers_to_stop_at_once(strategy: str) -> None:
    model = random_model(6, "bahdanau")
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] = 50.0  # </s> is by far the most likely first token
    source, lengths = batch_of([[4, 5, 4]])
    if strategy == "greedy":
        (hypothesis,) = search.greedy(model, source, lengths, torch.tensor([5]))
    else:
        ((hypothesis,),), _ = search.beam_search(model, source, lengths, torch.tensor([5]), beam_size=4,
                                                 scoring=search.Scoring(alpha=0.6))
    assert hypothesis.ids[0] != EOS_ID and hypothesis.ids[-1] == EOS_ID


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_as_wide_as_vocabulary_finds_the_enumerated_optimum(seed: int, alpha: float) -> None:
    # Vocabulary: 4 specials + tokens 4 and 5. With 3 output tokens at most, a beam of 6
    # (= the vocabulary) never has to prune, so it must find the exhaustive optimum.
    model = random_model(6, "bahdanau", seed=seed, scale=4.0)
    source, lengths = batch_of([[4, 5, 4]])
    candidates = all_outputs([4, 5], max_length=3)
    scored = search.force_decode(model, source.expand(len(candidates), -1), lengths.expand(len(candidates)),
                                 candidates, scoring=search.Scoring(alpha=alpha))
    best = max(scored, key=lambda h: h.normalized_score)
    ((found,),), _ = search.beam_search(model, source, lengths, torch.tensor([3]), beam_size=6,
                                        scoring=search.Scoring(alpha=alpha))
    assert found.ids == best.ids
    assert found.normalized_score == pytest.approx(best.normalized_score, abs=1e-4)


@pytest.mark.parametrize("attention", ["bahdanau", "luong-general"])
def test_each_beam_hypothesis_carries_the_attention_of_its_own_path(attention: str) -> None:
    model = random_model(30, attention, scale=2.0)
    source, lengths = batch_of([[5, 6, 7, 8]])
    beams, _ = search.beam_search(model, source, lengths, torch.tensor([8]), beam_size=6, nbest=6)
    assert len(beams[0]) == 6
    assert len({tuple(h.ids) for h in beams[0]}) == 6
    for hypothesis in beams[0]:
        (forced,) = search.force_decode(model, source, lengths, [hypothesis.ids])
        torch.testing.assert_close(hypothesis.attention, forced.attention, atol=1e-5, rtol=1e-4)
        assert hypothesis.token_logprobs == pytest.approx(forced.token_logprobs, abs=1e-4)


def test_attention_rows_sum_to_one_over_real_tokens_and_are_zero_on_padding() -> None:
    model = random_model(30, "bahdanau", scale=2.0)
    source, lengths = batch_of([[5, 6], [5, 6, 7, 8, 9, 10]])
    target_in = torch.tensor([[2, 5, 6, 7], [2, 8, 9, 10]])
    _, alphas = model(source, lengths, target_in)
    torch.testing.assert_close(alphas.sum(-1), torch.ones(2, 4))
    assert torch.all(alphas[0, :, int(lengths[0]):] == 0)
    beams, _ = search.beam_search(model, source, lengths, torch.tensor([6, 6]), beam_size=3, nbest=3)
    for sentence, hypotheses in enumerate(beams):
        for hypothesis in hypotheses:
            assert hypothesis.attention.shape == (len(hypothesis.ids), int(lengths[sentence]))
            torch.testing.assert_close(hypothesis.attention.sum(-1), torch.ones(len(hypothesis.ids)))


TINY_TRANSFORMER = {"arch": "transformer", "encoder_layers": 2, "decoder_layers": 2, "attention_heads": 2,
                    "feedforward_dim": 32}
BATCHED_MODELS = pytest.mark.parametrize("overrides",
                                         [{"attention": "bahdanau"}, {"attention": "none"}, TINY_TRANSFORMER],
                                         ids=["bahdanau", "no-attention", "transformer"])


@BATCHED_MODELS
def test_batched_beam_search_equals_one_sentence_at_a_time(overrides: dict) -> None:
    # A sentence whose search is done leaves the batch: the others' steps must not notice.
    model = random_model(40, scale=2.0, **overrides)
    source, lengths = batch_of(SOURCES)
    max_lengths = torch.tensor([9, 14, 5])
    batched, batched_traces = search.beam_search(model, source, lengths, max_lengths, beam_size=4, nbest=3,
                                                 scoring=search.Scoring(alpha=0.6), no_repeat_ngram=2, alternatives=2)
    assert len({len(trace) for trace in batched_traces}) > 1, "every sentence ended at the same step"
    for index, sentence in enumerate(SOURCES):
        single_source, single_lengths = batch_of([sentence])
        single, single_traces = search.beam_search(model, single_source, single_lengths, max_lengths[index:index + 1],
                                                   beam_size=4, nbest=3, scoring=search.Scoring(alpha=0.6),
                                                   no_repeat_ngram=2, alternatives=2)
        assert [h.ids for h in batched[index]] == [h.ids for h in single[0]]
        assert [h.score for h in batched[index]] == pytest.approx([h.score for h in single[0]], abs=1e-4)
        assert [h.parent_slots for h in batched[index]] == [h.parent_slots for h in single[0]]
        assert [[[i for i, _ in a] for a in h.alternatives] for h in batched[index]] == \
            [[[i for i, _ in a] for a in h.alternatives] for h in single[0]]
        if batched[index][0].attention is not None:
            torch.testing.assert_close(batched[index][0].attention, single[0][0].attention, atol=1e-5, rtol=0)
        assert [(s.step, [a[:3] for a in s.alive]) for s in batched_traces[index]] == \
            [(s.step, [a[:3] for a in s.alive]) for s in single_traces[0]]


@BATCHED_MODELS
def test_batched_greedy_equals_one_sentence_at_a_time(overrides: dict) -> None:
    # Rows leave the batch at their </s>, each with its own length limits and forced prefix.
    model = random_model(40, scale=2.0, **overrides)
    source, lengths = batch_of(SOURCES)
    max_lengths, min_lengths = torch.tensor([9, 14, 5]), torch.tensor([4, 1, 2])
    prefix = torch.tensor([[7, 8], [9, 9], [10, 4]])
    batched = search.greedy(model, source, lengths, max_lengths, prefix, min_lengths=min_lengths, alternatives=2)
    assert len({len(h.ids) for h in batched}) > 1, "every row ended at the same step"
    for index, sentence in enumerate(SOURCES):
        single_source, single_lengths = batch_of([sentence])
        (single,) = search.greedy(model, single_source, single_lengths, max_lengths[index:index + 1],
                                  prefix[index:index + 1], min_lengths=min_lengths[index:index + 1], alternatives=2)
        hypothesis = batched[index]
        assert hypothesis.ids == single.ids and hypothesis.ids[:2] == prefix[index].tolist()
        assert len(hypothesis.ids) >= int(min_lengths[index]) + 1 and hypothesis.ids[-1] == EOS_ID
        assert hypothesis.token_logprobs == pytest.approx(single.token_logprobs, abs=1e-5)
        assert [[i for i, _ in a] for a in hypothesis.alternatives] == [[i for i, _ in a] for a in single.alternatives]
        if hypothesis.attention is not None:
            torch.testing.assert_close(hypothesis.attention, single.attention, atol=1e-5, rtol=0)


def every_hypothesis(model: EncoderDecoder, strategy: str, scoring: search.Scoring,
                     with_attention: bool) -> list[search.Hypothesis]:
    """Every hypothesis of SOURCES under ``strategy`` (greedy with 2 alternatives, 3 samples, or
    beam 4 with 3 best), sentence after sentence."""
    source, lengths = batch_of(SOURCES)
    max_lengths = torch.tensor([9, 14, 5])
    if strategy == "greedy":
        return search.greedy(model, source, lengths, max_lengths, scoring=scoring, alternatives=2,
                             with_attention=with_attention)
    if strategy == "sample":
        found = search.sample(model, source, lengths, max_lengths, 3, 1.0, 0, 1.0,
                              torch.Generator().manual_seed(0), scoring=scoring, with_attention=with_attention)
    else:
        found, _ = search.beam_search(model, source, lengths, max_lengths, beam_size=4, nbest=3,
                                      scoring=scoring, with_attention=with_attention)
    return [h for sentence in found for h in sentence]


@BATCHED_MODELS
@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_a_search_without_attention_finds_the_same_outputs_and_keeps_none(overrides: dict, strategy: str) -> None:
    # The Transformer then runs the fused attention kernel: the same outputs, up to float rounding.
    model = random_model(40, scale=2.0, **overrides)
    scoring = search.Scoring(alpha=0.6, beta=0.0)

    kept, skipped = (every_hypothesis(model, strategy, scoring, with_attention) for with_attention in (True, False))
    assert [h.ids for h in skipped] == [h.ids for h in kept]
    for without, with_ in zip(skipped, kept):
        assert without.token_logprobs == pytest.approx(with_.token_logprobs, abs=1e-5)
        assert without.normalized_score == pytest.approx(with_.normalized_score, abs=1e-5)
        assert without.attention is None and without.head_attention is None
    assert (kept[0].attention is None) == (overrides.get("attention") == "none")


@BATCHED_MODELS
@pytest.mark.parametrize("strategy", ["beam", "sample"])
def test_a_search_that_ranks_with_the_coverage_penalty_keeps_attention_even_without_with_attention(
        overrides: dict, strategy: str) -> None:
    # beta > 0 ranks hypotheses by their attention: a caller that asks for none must still get
    # the same outputs in the same order, with the same scores.
    model = random_model(40, scale=2.0, **overrides)
    scoring = search.Scoring(alpha=0.6, beta=0.4)

    kept, asked_for_none = (every_hypothesis(model, strategy, scoring, with_attention)
                            for with_attention in (True, False))
    assert [h.ids for h in asked_for_none] == [h.ids for h in kept]
    for without, with_ in zip(asked_for_none, kept):
        assert without.normalized_score == pytest.approx(with_.normalized_score, abs=1e-6)
        assert (without.attention is None) == (with_.attention is None) == (overrides.get("attention") == "none")


def test_beam_does_not_stop_while_a_live_hypothesis_can_still_win() -> None:
    # Searches that stop early, with live beams left and steps to go: at that step no live beam
    # may be able to beat the n-th best finished hypothesis, even at the longest allowed length.
    max_length, alpha, stops_checked = 30, 0.6, 0
    for seed in range(20):
        model = random_model(12, "bahdanau", seed=seed, scale=3.0)
        source, lengths = batch_of([[4, 5, 6]])
        (hypotheses,), (trace,) = search.beam_search(model, source, lengths, torch.tensor([max_length]), beam_size=4,
                                                     nbest=2, scoring=search.Scoring(alpha=alpha))
        stop = trace[-1]
        if not stop.alive or stop.step == max_length - 1:
            continue  # ended because nothing was left alive, or at the length limit
        stops_checked += 1
        assert len(hypotheses) == 2
        worst_kept = hypotheses[-1].normalized_score
        for _, _, _, score in stop.alive:
            assert score / search.length_penalty(max_length, alpha) <= worst_kept + 1e-6
    assert stops_checked >= 3, "the models never stopped early with live beams: the property went untested"


def test_trace_and_parent_slots_follow_the_hypothesis() -> None:
    model = random_model(30, "bahdanau", scale=2.0)
    source, lengths = batch_of([[5, 6, 7]])
    (hypotheses,), (trace,) = search.beam_search(model, source, lengths, torch.tensor([8]), beam_size=3, nbest=3)
    assert len(hypotheses) == 3
    for hypothesis in hypotheses:
        assert len(hypothesis.parent_slots) == len(hypothesis.ids) and hypothesis.parent_slots[0] == 0
        # Walk the back-pointers: the token kept at (step, slot) is the hypothesis's token at that
        # step, and it continues the prefix kept at (step - 1, its parent slot).
        for step in range(len(hypothesis.ids) - 1):
            slot = hypothesis.parent_slots[step + 1]
            node = next(a for a in trace[step].alive if a[0] == slot)
            assert node[1] == hypothesis.ids[step]
            assert node[2] == hypothesis.parent_slots[step]
        finish_step = trace[len(hypothesis.ids) - 1]
        assert any(parent == hypothesis.parent_slots[-1] and score == pytest.approx(hypothesis.score)
                   for parent, score, _ in finish_step.finished)


def test_no_repeat_ngram_forbids_repeated_bigrams() -> None:
    model = random_model(8, "bahdanau", seed=1, scale=3.0)  # tiny vocabulary: repeats are likely
    source, lengths = batch_of([[4, 5, 6, 7]])
    beams, _ = search.beam_search(model, source, lengths, torch.tensor([12]), beam_size=3, nbest=3,
                                  no_repeat_ngram=2)
    for hypothesis in beams[0]:
        body = hypothesis.ids[:-1]
        bigrams = list(zip(body, body[1:]))
        assert len(bigrams) == len(set(bigrams))


def test_forced_prefix_starts_every_output() -> None:
    model = random_model(30, "bahdanau", scale=2.0)
    source, lengths = batch_of([[5, 6, 7], [8, 9]])
    prefix = torch.tensor([[20, 21], [20, 21]])
    for hypotheses in [search.greedy(model, source, lengths, torch.tensor([8, 8]), prefix)] + \
            [[h for hs in search.beam_search(model, source, lengths, torch.tensor([8, 8]), 3, 3, prefix=prefix)[0]
              for h in hs]]:
        for hypothesis in hypotheses:
            assert hypothesis.ids[:2] == [20, 21]


def test_sampling_is_reproducible_and_top_k_one_is_greedy() -> None:
    model = random_model(30, "bahdanau", scale=2.0)
    source, lengths = batch_of(SOURCES)
    max_lengths = torch.full((3,), 10)

    def draw(seed: int, **options) -> list[list[list[int]]]:
        samples = search.sample(model, source, lengths, max_lengths, samples=4,
                                generator=torch.Generator().manual_seed(seed), **options)
        return [[h.ids for h in hyps] for hyps in samples]

    options = dict(temperature=1.5, top_k=0, top_p=0.9)
    assert draw(7, **options) == draw(7, **options)
    greedy = search.greedy(model, source, lengths, max_lengths)
    for sentence, hypotheses in enumerate(draw(3, temperature=1.0, top_k=1, top_p=1.0)):
        assert all(ids == greedy[sentence].ids for ids in hypotheses)


def test_top_p_keeps_the_smallest_nucleus() -> None:
    log_probs = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = search.filter_for_sampling(log_probs, 1.0, 0, 0.7) > float("-inf")
    assert kept.tolist() == [[True, True, False, False]]


@pytest.mark.parametrize("weights, tolerance", [("bf16-output", 0.01), ("int8", 0.1)])
@pytest.mark.parametrize("overrides", [{"rnn_type": "gru"}, {"rnn_type": "lstm"}, TINY_TRANSFORMER],
                         ids=["gru", "lstm", "transformer"])
def test_reduced_precision_weights_score_like_float32_and_leave_search_working(weights: str, tolerance: float,
                                                                               overrides: dict) -> None:
    """``tolerance``: the largest logit error allowed, as a share of the largest logit (int8 on
    these 16-wide random models errs by 2-6%; the shipped models' BLEU with each is in their cards)."""
    model = random_model(40, "bahdanau", scale=2.0, **overrides)
    source, lengths = batch_of(SOURCES)
    max_lengths = torch.full((len(SOURCES),), 12)
    float32 = search.greedy(model, source, lengths, max_lengths)
    previous = torch.tensor([[EOS_ID, 5, 6]] * len(SOURCES))
    with torch.no_grad():
        memory, state = model.encode(source, lengths)
        expected, _, _ = model.step(previous, state, memory)
        with_weights(model, weights)
        memory, state = model.encode(source, lengths)
        logits, _, _ = model.step(previous, state, memory)
    assert logits.dtype == torch.float32
    assert not torch.equal(logits, expected)  # the reduced weights are in use
    bound = tolerance * expected.abs().max().item()
    assert (logits - expected).abs().max().item() <= bound
    rescored = search.greedy(model, source, lengths, max_lengths)
    for a, b in zip(float32, rescored):
        assert b.ids[-1] == EOS_ID
        # Same path up to where the two disagree; there a log-probability moves by at most twice
        # the largest logit error.
        shared = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), min(len(a.ids), len(b.ids)))
        assert a.token_logprobs[:shared] == pytest.approx(b.token_logprobs[:shared], abs=2 * bound)


def test_top_alternative_of_each_greedy_step_is_the_greedy_piece_with_its_probability() -> None:
    model = random_model(40, "bahdanau", scale=2.0)
    source, lengths = batch_of(SOURCES)
    for hypothesis in search.greedy(model, source, lengths, torch.full((3,), 12), alternatives=5):
        assert len(hypothesis.alternatives) == len(hypothesis.ids)
        for position, (token, logprob, alternatives) in enumerate(
                zip(hypothesis.ids, hypothesis.token_logprobs, hypothesis.alternatives)):
            if (position == 0 and alternatives[0][0] == EOS_ID) or position == 11:
                continue  # constrained steps: </s> is forbidden first and forced at the last allowed step
            assert alternatives[0][0] == token and alternatives[0][1] == pytest.approx(logprob, abs=1e-6)
            assert [lp for _, lp in alternatives] == sorted((lp for _, lp in alternatives), reverse=True)


def test_each_beam_hypothesis_carries_the_alternatives_of_its_own_prefix() -> None:
    # The alternatives at each position are the model's distribution given that hypothesis's own
    # prefix, followed along its back-pointers: force-decoding the hypothesis gives the same.
    model = random_model(30, "bahdanau", scale=2.0)
    source, lengths = batch_of([[5, 6, 7, 8]])
    beams, _ = search.beam_search(model, source, lengths, torch.tensor([8]), beam_size=6, nbest=6, alternatives=4)
    assert len(beams[0]) == 6
    for hypothesis in beams[0]:
        (forced,) = search.force_decode(model, source, lengths, [hypothesis.ids], alternatives=4)
        assert [[i for i, _ in p] for p in hypothesis.alternatives] == [[i for i, _ in p] for p in forced.alternatives]
        torch.testing.assert_close(torch.tensor([[lp for _, lp in p] for p in hypothesis.alternatives]),
                                   torch.tensor([[lp for _, lp in p] for p in forced.alternatives]), atol=1e-4, rtol=0)


def test_trace_shows_the_candidates_pruned_at_each_step_and_why() -> None:
    model = random_model(30, "bahdanau", scale=2.0)
    source, lengths = batch_of([[5, 6, 7]])
    _, (trace,) = search.beam_search(model, source, lengths, torch.tensor([8]), beam_size=3, nbest=3)
    assert any(step.pruned and len(step.alive) == 3 for step in trace)  # the check below runs at least once
    for step in trace:
        assert len(step.alive) + len(step.finished) + len(step.pruned) <= 2 * 3
        if len(step.alive) == 3:  # a full beam: every pruned continuation scored below the last one kept
            worst_kept = min(score for *_, score in step.alive)
            assert all(score <= worst_kept + 1e-6 for token, _, score in step.pruned if token != EOS_ID)


@pytest.mark.parametrize("attention", ["bahdanau", "luong-general"])
def test_steering_every_step_with_the_model_s_own_attention_reproduces_the_search(attention: str) -> None:
    model = random_model(30, attention, scale=2.0)
    source, lengths = batch_of([[5, 6, 7, 8]])
    (greedy,) = search.greedy(model, source, lengths, torch.tensor([10]))
    steering = greedy.attention.unsqueeze(0)  # [1, T, S]: the model's own weights at every step
    (again,) = search.greedy(model, source, lengths, torch.tensor([10]), steering=steering)
    assert again.ids == greedy.ids and again.token_logprobs == greedy.token_logprobs
    beams, _ = search.beam_search(model, source, lengths, torch.tensor([10]), beam_size=1)
    steered_beams, _ = search.beam_search(model, source, lengths, torch.tensor([10]), beam_size=1,
                                          steering=beams[0][0].attention.unsqueeze(0))
    assert steered_beams[0][0].ids == beams[0][0].ids and steered_beams[0][0].score == beams[0][0].score


def test_a_one_hot_steering_changes_that_step_s_context_and_only_from_there() -> None:
    model = random_model(30, "bahdanau", scale=2.0)
    source, lengths = batch_of([[5, 6, 7, 8]])
    memory, state = model.encode(source, lengths)
    previous = torch.tensor([[1, 9, 10]])  # <s> and two output tokens, teacher-forced
    steer = torch.full((1, 3, 5), float("nan"))
    steer[0, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])
    with torch.no_grad():
        free_logits, _, free_alphas = model.step(previous, state, memory)
        logits, _, alphas = model.step(previous, state, memory, steer)
    assert torch.equal(alphas[0, 1], steer[0, 1]) and torch.equal(alphas[0, [0, 2]], free_alphas[0, [0, 2]])
    assert torch.equal(logits[0, 0], free_logits[0, 0])  # steps before are untouched
    assert not torch.allclose(logits[0, 1], free_logits[0, 1])  # the step's context vector changed


def test_force_decoding_an_empty_target_is_refused_by_name() -> None:
    model = random_model(30, "bahdanau")
    source, lengths = batch_of([[5, 6]])
    with pytest.raises(ValueError, match="at least one target piece"):
        search.force_decode(model, source, lengths, [[]])


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_output_layer_without_gradients_follows_every_change_of_its_weights(arch: str) -> None:
    """The output layer's cached W^T (``model.OutputLayer``, used without gradients) gives the
    logits of the plain product, also after an optimiser step changes W in place and after the
    weights are replaced."""
    overrides = {"arch": "transformer", "attention_heads": 2, "feedforward_dim": 32} if arch == "transformer" else {}
    model = random_model(40, **overrides)
    layer = model.decoder.output
    states = torch.randn(3, 2, layer.in_features)

    def agrees() -> bool:
        with torch.no_grad():
            cached = layer(states)
        return torch.allclose(cached, torch.nn.functional.linear(states, layer.weight, layer.bias), atol=1e-6)

    assert agrees()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    logits, _ = model(*batch_of(SOURCES), torch.tensor([[2, 5, 6]] * len(SOURCES)))
    logits.sum().backward()
    optimizer.step()
    assert agrees()
    layer.weight = torch.nn.Parameter(torch.randn_like(layer.weight))
    assert agrees()


def _all_strategies(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
                    **options: object) -> list[search.Hypothesis]:
    """Every hypothesis of greedy, beam search (3 wide, 3-best) and sampling (4 samples) on the batch."""
    greedy = search.greedy(model, source, lengths, max_lengths, **options)
    beams, _ = search.beam_search(model, source, lengths, max_lengths, 3, 3, **options)
    samples = search.sample(model, source, lengths, max_lengths, 4, 1.0, 0, 1.0,
                            torch.Generator().manual_seed(0), **options)
    return greedy + [h for hs in beams for h in hs] + [h for hs in samples for h in hs]


@pytest.mark.parametrize("n", [1, 2])
def test_every_strategy_keeps_the_no_repeat_ngram_rule(n: int) -> None:
    model = random_model(8, "bahdanau", seed=1, scale=3.0)  # tiny vocabulary: repeats are likely
    source, lengths = batch_of([[4, 5, 6, 7], [5, 5]])
    for hypothesis in _all_strategies(model, source, lengths, torch.tensor([7, 7]), no_repeat_ngram=n):
        body = hypothesis.ids[:-1] if hypothesis.finished else hypothesis.ids
        ngrams = [tuple(body[i:i + n]) for i in range(len(body) - n + 1)]
        assert len(ngrams) == len(set(ngrams)), hypothesis.ids


def test_a_forced_prefix_that_repeats_is_kept_and_the_ban_applies_after_it() -> None:
    """The prefix a person forced ("le le", a picked alternative) may repeat itself: it is kept,
    every strategy still ends, and from the first chosen piece on no n-gram repeats."""
    model = random_model(12, "bahdanau", seed=2, scale=3.0)
    source, lengths = batch_of([[4, 5, 6], [7, 8]])
    prefix = torch.tensor([[9, 9], [9, 9]])
    for hypothesis in _all_strategies(model, source, lengths, torch.tensor([8, 8]), prefix=prefix,
                                      no_repeat_ngram=1):
        assert hypothesis.ids[:2] == [9, 9] and hypothesis.finished
        chosen = hypothesis.ids[2:-1]
        assert len(chosen) == len(set(chosen)) and not set(chosen) & {9}, hypothesis.ids


def test_the_shortest_output_allowed_still_has_one_piece() -> None:
    """A max length of 2 (what any ratio is clamped to) leaves room for one piece before </s>."""
    model = random_model(10, "bahdanau", seed=3)
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] = 50.0
    source, lengths = batch_of([[4, 5]])
    for hypothesis in _all_strategies(model, source, lengths, torch.tensor([2])):
        assert len(hypothesis.ids) == 2 and hypothesis.ids[0] != EOS_ID and hypothesis.finished
