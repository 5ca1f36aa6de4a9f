"""Fixtures: tiny data, tokenizers and models that the tests make themselves."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from s2s.config import ModelConfig
from s2s.architectures import build_model
from s2s.model import EncoderDecoder
from s2s.tokenizer import Tokenizer
from s2s.translator import Translator

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from s2s.service import Service

WORDS = ["red", "blue", "green", "cat", "dog", "bird", "runs", "sleeps", "eats", "big", "small", "the"]


def reverse_task(count: int, seed: int) -> list[tuple[str, str]]:
    """Pairs 'w1 w2 ... wn' -> 'wn ... w2 w1': a task a tiny model learns in seconds."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 6))]
        pairs.append((" ".join(words), " ".join(reversed(words))))
    return pairs


def only_sentence(result: dict) -> dict:
    """The one sentence of a translation result (the test input has one sentence)."""
    assert len(result["sentences"]) == 1, result["sentences"]
    return result["sentences"][0]


def assert_same_sentences(got: list[dict], expected: list[dict]) -> None:
    """Sentence results that decoded the same: identical pieces and outputs, scores and attention
    equal up to float rounding (a batch of different shape takes other BLAS paths)."""
    assert [s["source_pieces"] for s in got] == [s["source_pieces"] for s in expected]
    for a, b in zip(got, expected):
        assert [h["ids"] for h in a["hypotheses"]] == [h["ids"] for h in b["hypotheses"]]
        for h, g in zip(a["hypotheses"], b["hypotheses"]):
            assert h["score"] == pytest.approx(g["score"], abs=1e-4)
            assert h["normalized_score"] == pytest.approx(g["normalized_score"], abs=1e-4)
            if g["attention"] is not None:
                torch.testing.assert_close(torch.tensor(h["attention"]), torch.tensor(g["attention"]),
                                           atol=1e-5, rtol=0)
        assert (a["trace"] is None) == (b["trace"] is None)


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    text = [s for pair in reverse_task(500, seed=0) for s in pair] + ["Hello world.", "Bonjour le monde."]
    return Tokenizer.train(text, vocab_size=60)


def random_model(vocab_size: int, attention: str = "bahdanau", rnn_type: str = "gru", seed: int = 0,
                 scale: float = 1.0, **overrides) -> EncoderDecoder:
    """A small model with random weights; ``scale`` sharpens its output distributions."""
    torch.manual_seed(seed)
    config = ModelConfig(**{"vocab_size": vocab_size, "embedding_dim": 16, "encoder_hidden": 12,
                            "decoder_hidden": 24,  # 24 = 2 * 12, as luong-dot needs
                            "attention": attention, "rnn_type": rnn_type, "dropout": 0.0, **overrides})
    model = build_model(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(scale)
    return model.eval()


@pytest.fixture
def translator(tokenizer: Tokenizer) -> Translator:
    return Translator(random_model(tokenizer.vocab_size, scale=3.0), tokenizer, name="random")


@pytest.fixture
def service(translator: Translator, tmp_path: Path) -> "Service":
    """The service over three folders of the random model, named as the REST API's pairs need."""
    from s2s.admission import Gate
    from s2s.catalog import ModelCatalog
    from s2s.checkpoint import save_model
    from s2s.service import Service

    for name in ("en-fr", "en-fr-noattn", "de-en"):
        save_model(tmp_path / name, translator.model, translator.tokenizer)
    return Service(ModelCatalog(tmp_path, default="en-fr"), gate=Gate(max_wait=0.05))


@pytest.fixture
def client(service: "Service") -> "TestClient":
    """The REST API over ``service``, answering a bug with 500 as a server would."""
    from fastapi.testclient import TestClient

    from s2s.rest import create_app

    return TestClient(create_app(service), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def reverse_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("data")
    return (write_tsv(folder / "train.tsv", reverse_task(400, seed=1)),
            write_tsv(folder / "dev.tsv", reverse_task(30, seed=2)))


# The layers and heads of a tiny Transformer (with TINY_TRAIN_OPTIONS' embedding size 24).
TINY_TRANSFORMER_OPTIONS = ["--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2",
                            "--attention-heads", "4", "--feedforward-dim", "32"]
ARCHITECTURE_OPTIONS = {"rnn": [], "transformer": TINY_TRANSFORMER_OPTIONS}
TINY_TRAIN_OPTIONS = ["--vocab-size", "60", "--embedding-dim", "24", "--encoder-hidden", "24",
                      "--decoder-hidden", "32", "--batch-tokens", "300", "--warmup-steps", "5",
                      "--lr", "0.01", "--dropout", "0.0", "--no-progress", "--threads", "1"]
