"""Saliency beside attention: gradient attributions of a force-decoded output to the source."""

from __future__ import annotations

import pytest
import torch

from s2s.catalog import ModelCatalog
from s2s.checkpoint import save_model
from s2s.cli import main
from s2s.saliency import example_bytes, source_saliency
from s2s.search import NEG_INF, NEVER_OUTPUT
from s2s.service import RecentAnswers, Service
from s2s.tokenizer import BOS_ID, EOS_ID
from s2s.translator import Translator, load
from tests.conftest import only_sentence, random_model, reverse_task, write_tsv

SOURCE, TARGET = [5, 6, 7, 8, EOS_ID], [9, 10, 11, EOS_ID]


def teacher_forced_log_probs(model, embedded: torch.Tensor) -> torch.Tensor:
    """log p(TARGET[t] | TARGET[:t], source embeddings [1, S, E]) [T], by the model's full forward."""
    logits, _ = model(torch.tensor([SOURCE]), torch.tensor([len(SOURCE)]), torch.tensor([[BOS_ID] + TARGET[:-1]]),
                      source_embeddings=embedded)
    logits = logits.float()
    logits[:, :, NEVER_OUTPUT] = NEG_INF
    return torch.log_softmax(logits, -1)[0, torch.arange(len(TARGET)), torch.tensor(TARGET)]


def test_integrated_gradients_rows_add_up_to_the_change_in_log_probability() -> None:
    # Completeness (Sundararajan et al. 2017): each row sums to log p(y_t | x) - log p(y_t | 0),
    # with the change computed independently, through the model's whole teacher-forced forward.
    model = random_model(30, "bahdanau", scale=2.0)
    scores = source_saliency(model, SOURCE, TARGET, "integrated_gradients", steps=128)
    embedded = model.encoder.embedding(torch.tensor([SOURCE]))
    with torch.no_grad():
        change = teacher_forced_log_probs(model, embedded) - teacher_forced_log_probs(model, torch.zeros_like(embedded))
    torch.testing.assert_close(scores["signed"].sum(-1), change, atol=2e-3, rtol=1e-2)
    assert scores["convergence"].max() < 2e-3


@pytest.mark.parametrize("method", ["integrated_gradients", "input_x_gradient"])
def test_a_small_memory_budget_runs_in_chunks_and_gives_the_same_attributions(method: str) -> None:
    model = random_model(30, "bahdanau", scale=2.0)
    whole = source_saliency(model, SOURCE, TARGET, method, steps=16)
    one_example = example_bytes(model.config, len(SOURCE), len(TARGET))
    chunked = source_saliency(model, SOURCE, TARGET, method, steps=16, memory_budget=3 * one_example)
    torch.testing.assert_close(chunked["signed"], whole["signed"], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="over the budget"):
        source_saliency(model, SOURCE, TARGET, method, steps=16, memory_budget=one_example - 1)


@pytest.fixture(scope="module")
def reversal_model(tmp_path_factory: pytest.TempPathFactory) -> Translator:
    """A tiny model trained here to reverse word order ("red cat runs" -> "runs cat red")."""
    folder = tmp_path_factory.mktemp("reverse")
    train, dev = write_tsv(folder / "train.tsv", reverse_task(3000, 1)), write_tsv(folder / "dev.tsv", reverse_task(40, 2))
    assert main(["train", "--train", str(train), "--dev", str(dev), "--out", str(folder / "model"),
                 "--max-steps", "300", "--valid-every", "100", "--vocab-size", "40", "--embedding-dim", "32",
                 "--encoder-hidden", "32", "--decoder-hidden", "64", "--batch-tokens", "400", "--warmup-steps",
                 "20", "--lr", "0.005", "--dropout", "0.0", "--no-progress", "--threads", "1", "--seed", "1"]) == 0
    return load(folder / "model")


def mirror_hits(translator: Translator, method: str) -> tuple[int, int]:
    """Over reversed sentences: how many output words have their mirror source word as the most
    salient source piece (</s> aside), and how many output words were checked."""
    hits = total = 0
    for text in ["red cat runs big", "the dog eats small blue bird", "green bird sleeps", "small big red the cat dog"]:
        sentence = only_sentence(translator.translate(text, strategy="greedy"))
        best = sentence["hypotheses"][0]
        words = len(text.split())
        assert best["text"] == " ".join(reversed(text.split())) and len(sentence["source_pieces"]) == words + 1
        relevance = torch.tensor(translator.saliency(text, best["ids"], method, 16)["relevance"])[:-1, :-1]
        hits += sum(int(relevance[t].argmax()) == words - 1 - t for t in range(words))
        total += words
    return hits, total


@pytest.mark.parametrize("method, share", [("integrated_gradients", 0.9), ("input_x_gradient", 0.75)])
def test_saliency_of_a_trained_reversal_model_points_at_the_mirrored_source_word(
        reversal_model: Translator, method: str, share: float) -> None:
    hits, total = mirror_hits(reversal_model, method)
    assert hits >= share * total, (hits, total)


def test_saliency_of_an_untrained_model_does_not_find_the_mirror(reversal_model: Translator) -> None:
    # The control: the same check on the same vocabulary without training fails, so the check
    # above measures what the model learned, not a property of the method.
    untrained = Translator(random_model(reversal_model.tokenizer.vocab_size, scale=1.0, seed=4),
                           reversal_model.tokenizer, name="untrained")
    relevance_hits = 0
    for text in ["red cat runs big", "the dog eats small blue bird", "small big red the cat dog"]:
        words = text.split()
        ids = reversal_model.tokenizer.encode(" ".join(reversed(words))) + [EOS_ID]
        relevance = torch.tensor(untrained.saliency(text, ids, "integrated_gradients", 16)["relevance"])[:-1, :-1]
        relevance_hits += sum(int(relevance[t].argmax()) == len(words) - 1 - t for t in range(len(words)))
    assert relevance_hits < 0.6 * 16


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
    relevance, attention = torch.tensor(result["relevance"]), torch.tensor(result["attention"])
    agreeing = (relevance.argmax(-1) == attention.argmax(-1)).float().mean()
    assert result["agreement"] == pytest.approx(float(agreeing)) and result["convergence"] is None


@pytest.mark.parametrize("call, message", [
    (lambda t: t.saliency("the cat", [5, EOS_ID], method="lime"), "method"),
    (lambda t: t.saliency("the cat", [5, EOS_ID], steps=1), "steps"),
    (lambda t: t.saliency("the cat", [], method="input_x_gradient"), "ids"),
    (lambda t: t.saliency("the cat", [10 ** 6]), "ids"),
    (lambda t: t.saliency("  ", [5, EOS_ID]), "Empty input"),
    (lambda t: Translator(t.model, t.tokenizer, weights="int8").saliency("the cat", [5, EOS_ID]),
     "saliency needs gradients, which int8 weights have not"),
])
def test_bad_saliency_requests_get_clear_errors(translator: Translator, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(translator)


def test_the_service_answers_a_repeated_saliency_question_from_its_recent_answers(
        translator: Translator, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_model(tmp_path / "m", translator.model, translator.tokenizer)
    service = Service(ModelCatalog(tmp_path, default="m"))
    loaded = service.translator("m")
    calls = []
    original = loaded.saliency
    monkeypatch.setattr(loaded, "saliency", lambda *args: calls.append(args) or original(*args))
    first = service.saliency("m", "the big cat runs", method="input_x_gradient")
    again = service.saliency("m", "the big cat runs", method="input_x_gradient")
    assert again == first and len(calls) == 1
    other = service.saliency("m", "the big cat runs", method="integrated_gradients", steps=4)
    assert other["method"] == "integrated_gradients" and len(calls) == 2
    answers = RecentAnswers(2)
    for key in "abc":
        answers.put(key, key.upper())
    assert answers.get("a") is None and answers.get("c") == "C" and len(answers.answers) == 2
