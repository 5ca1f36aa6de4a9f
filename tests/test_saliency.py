"""Saliency beside attention: gradient attributions of a force-decoded output to the source."""

from __future__ import annotations

import pytest
import torch

from s2s.saliency import _target_log_probs, source_saliency
from s2s.tokenizer import BOS_ID, EOS_ID
from s2s.translator import Translator
from tests.conftest import only_sentence, random_model

SOURCE, TARGET = [5, 6, 7, 8, EOS_ID], [9, 10, 11, EOS_ID]


def test_integrated_gradients_rows_add_up_to_the_change_in_log_probability() -> None:
    # Completeness (Sundararajan et al. 2017): each row sums to log p(y_t | x) - log p(y_t | 0).
    model = random_model(30, "bahdanau", scale=2.0)
    scores = source_saliency(model, SOURCE, TARGET, "integrated_gradients", steps=128)
    forward = _target_log_probs(model)
    arguments = (torch.tensor([SOURCE]), torch.tensor([len(SOURCE)]), torch.tensor([[BOS_ID] + TARGET[:-1]]),
                 torch.tensor([TARGET]))
    embedded = model.encoder.embedding(torch.tensor([SOURCE]))
    with torch.no_grad():
        change = forward(embedded, *arguments)[0] - forward(torch.zeros_like(embedded), *arguments)[0]
    torch.testing.assert_close(scores["signed"].sum(-1), change, atol=2e-3, rtol=1e-2)
    assert scores["convergence"].max() < 2e-3


@pytest.mark.parametrize("method", ["integrated_gradients", "input_x_gradient"])
@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_relevance_has_a_row_per_output_piece_summing_to_one(method: str, attention: str) -> None:
    model = random_model(30, attention, scale=2.0)
    scores = source_saliency(model, SOURCE, TARGET, method, steps=8)
    assert scores["relevance"].shape == (len(TARGET), len(SOURCE))
    torch.testing.assert_close(scores["relevance"].sum(-1), torch.ones(len(TARGET)))
    assert not model.training


def test_a_source_piece_the_output_never_reads_gets_no_relevance() -> None:
    # Integrated gradients moves each embedding from the zero baseline to its value: a piece whose
    # embedding is zero does not move, so it gets exactly zero attribution whatever the model does.
    model = random_model(30, "bahdanau", scale=2.0)
    with torch.no_grad():
        model.encoder.embedding.weight[7] = 0.0
    scores = source_saliency(model, SOURCE, TARGET, "integrated_gradients", steps=16)
    assert torch.all(scores["signed"][:, 2] == 0.0)


def test_the_translator_puts_saliency_beside_the_attention_of_the_same_output(translator: Translator) -> None:
    hypothesis = only_sentence(translator.translate("the big cat runs", strategy="greedy"))["hypotheses"][0]
    result = translator.saliency("the big cat runs", hypothesis["ids"], "input_x_gradient")
    assert result["pieces"] == hypothesis["pieces"]
    assert len(result["relevance"]) == len(result["attention"]) == len(hypothesis["ids"])
    torch.testing.assert_close(torch.tensor(result["attention"]), torch.tensor(hypothesis["attention"]),
                               atol=1e-5, rtol=0)
    assert 0.0 <= result["agreement"] <= 1.0 and result["convergence"] is None


@pytest.mark.parametrize("call, message", [
    (lambda t: t.saliency("the cat", [5, EOS_ID], method="lime"), "method"),
    (lambda t: t.saliency("the cat", [5, EOS_ID], steps=1), "steps"),
    (lambda t: t.saliency("the cat", [], method="input_x_gradient"), "ids"),
    (lambda t: t.saliency("the cat", [10 ** 6]), "ids"),
    (lambda t: t.saliency("  ", [5, EOS_ID]), "Empty input"),
])
def test_bad_saliency_requests_get_clear_errors(translator: Translator, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(translator)
