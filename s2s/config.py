"""Plain configuration values: one dataclass for the model, one for training.

Both are stored as JSON (``config.json`` in a checkpoint folder, or ``--config FILE`` for
training), so a checkpoint is described by data only and loading it never runs code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

ARCHITECTURES = ("rnn", "transformer")
ATTENTION_TYPES = ("bahdanau", "luong-dot", "luong-general", "none")
RNN_TYPES = ("gru", "lstm")
DEVICES = ("auto", "cpu", "cuda")  # auto = CUDA when PyTorch sees a GPU
PRECISIONS = ("fp32", "bf16")  # bf16 = forward passes under bfloat16 autocast
# plateau: the rate is multiplied by lr_decay after lr_patience bad validations; linear: after the
# warm-up it falls in a straight line to min_lr at the end of the budget (max_steps if set, else max_time)
LR_SCHEDULES = ("plateau", "linear")

MAX_PROBE_CHARS = 500
MIN_VOCAB_SIZE = 5  # the four special pieces and one more: sentencepiece fails below (3 did)
T = TypeVar("T")
# Upper bounds of the integer sizes: far above any model this project trains, low enough that a
# corrupt or hostile config.json cannot ask for an absurd allocation.
MODEL_SIZE_LIMITS = {"vocab_size": 256_000, "embedding_dim": 8192, "encoder_hidden": 8192,
                     "decoder_hidden": 8192, "encoder_layers": 16, "decoder_layers": 16,
                     "max_source_len": 4096, "attention_heads": 64, "feedforward_dim": 32768}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass
class ModelConfig:
    """Architecture of the encoder-decoder; everything needed to rebuild it. ``arch`` picks the
    attentional RNN (``model.Seq2Seq``: rnn_type, encoder/decoder_hidden and attention apply) or
    the Transformer (``transformer.Transformer``: embedding_dim is d_model, attention_heads and
    feedforward_dim apply); the layer counts, dropout and tying apply to both."""

    arch: str = "rnn"
    vocab_size: int = 8000
    embedding_dim: int = 256
    encoder_hidden: int = 256  # per direction: encoder states have 2 * encoder_hidden features
    decoder_hidden: int = 512
    encoder_layers: int = 1
    decoder_layers: int = 1
    rnn_type: str = "gru"
    attention: str = "bahdanau"
    dropout: float = 0.3
    tie_embeddings: bool = True  # share source, target and output embeddings (joint vocabulary)
    max_source_len: int = 128  # pieces, </s> included; longer input is truncated with a warning
    attention_heads: int = 4  # transformer only
    feedforward_dim: int = 1024  # transformer only: the inner size d_ff of each position-wise layer

    def validate(self) -> "ModelConfig":
        """Types and ranges, checked before anything is allocated: a checkpoint's config.json
        with absurd sizes gets a message naming the field, not an allocator error."""
        for name, high in MODEL_SIZE_LIMITS.items():
            value = getattr(self, name)
            _require(isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high,
                     f"{name} must be an integer in [1, {high}], got {value!r}")
        _require(self.vocab_size >= MIN_VOCAB_SIZE, f"vocab_size must be >= {MIN_VOCAB_SIZE}, got {self.vocab_size}")
        _require(self.arch in ARCHITECTURES, f"arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        _require(self.arch != "transformer" or self.embedding_dim % self.attention_heads == 0,
                 f"embedding_dim ({self.embedding_dim}) must be divisible by attention_heads ({self.attention_heads})")
        _require(self.rnn_type in RNN_TYPES, f"rnn_type must be one of {RNN_TYPES}, got {self.rnn_type!r}")
        _require(self.attention in ATTENTION_TYPES,
                 f"attention must be one of {ATTENTION_TYPES}, got {self.attention!r}")
        _require(isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool)
                 and 0.0 <= self.dropout < 1.0, f"dropout must be a number in [0, 1), got {self.dropout!r}")
        _require(isinstance(self.tie_embeddings, bool),
                 f"tie_embeddings must be true or false, got {self.tie_embeddings!r}")
        return self


@dataclasses.dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings of ``python -m s2s train``.

    The defaults are the recipe that trained the shipped attention models; each model card
    gives its exact command.
    """

    vocab_size: int = 8000
    max_len: int = 64  # training pairs with more pieces on either side are skipped
    batch_tokens: int = 2000  # target tokens per batch (bucketed by length)
    lr: float = 1.5e-3
    warmup_steps: int = 300
    lr_schedule: str = "plateau"  # one of LR_SCHEDULES
    lr_decay: float = 0.5  # multiply the learning rate by this after `lr_patience` bad validations
    lr_patience: int = 3
    min_lr: float = 2e-5
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    teacher_forcing: float = 1.0  # ratio at the start of training
    teacher_forcing_final: float = 1.0  # ratio reached linearly at `teacher_forcing_steps`
    teacher_forcing_steps: int = 10000
    max_steps: int = 0  # 0 = no limit
    max_epochs: int = 0  # 0 = no limit
    max_time: float = 0.0  # seconds of training; 0 = no limit
    valid_every: int = 1000  # steps
    log_every: int = 50  # steps between training-loss records in train_log.jsonl
    valid_beam_size: int = 1  # dev BLEU is measured with this beam (1 = greedy, fastest)
    early_stopping_patience: int = 8  # validations without dev BLEU improvement
    seed: int = 1
    threads: int = 0  # torch threads; 0 = torch's default
    fp16_weights: bool = True  # store the shipped weights in float16
    device: str = "auto"  # auto, cpu or cuda (auto = CUDA when present)
    precision: str = "fp32"  # fp32 or bf16 (autocast; weights and optimiser stay float32)
    probe: str = ""  # a sentence whose greedy output and attention are recorded at every validation

    def validate(self) -> "TrainConfig":
        _require(isinstance(self.vocab_size, int) and MIN_VOCAB_SIZE <= self.vocab_size
                 <= MODEL_SIZE_LIMITS["vocab_size"], f"vocab_size must be an integer in [{MIN_VOCAB_SIZE}, "
                 f"{MODEL_SIZE_LIMITS['vocab_size']}] (sentencepiece needs room for the special pieces; a "
                 f"vocabulary smaller than the data's characters and bytes grows to fit), got {self.vocab_size!r}")
        _require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _require(self.batch_tokens >= 1, f"batch_tokens must be >= 1, got {self.batch_tokens}")
        _require(self.max_len >= 2, f"max_len must be >= 2, got {self.max_len}")
        _require(0.0 <= self.label_smoothing < 1.0,
                 f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        for name in ("teacher_forcing", "teacher_forcing_final"):
            value = getattr(self, name)
            _require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        _require(0.0 < self.lr_decay <= 1.0, f"lr_decay must be in (0, 1], got {self.lr_decay}")
        _require(self.valid_every >= 1, f"valid_every must be >= 1, got {self.valid_every}")
        _require(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        _require(self.valid_beam_size >= 1, f"valid_beam_size must be >= 1, got {self.valid_beam_size}")
        _require(self.lr_schedule in LR_SCHEDULES,
                 f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        _require(self.lr_schedule != "linear" or self.max_steps > 0 or self.max_time > 0,
                 "lr_schedule linear falls to min_lr at the end of the budget: it needs max_steps or max_time > 0")
        _require(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        _require(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        _require(isinstance(self.probe, str) and len(self.probe) <= MAX_PROBE_CHARS,
                 f"probe must be a text of at most {MAX_PROBE_CHARS} characters")
        return self


def from_dict(cls: type[T], values: dict[str, Any], source: str) -> T:
    """Build ``cls`` from a dict, naming ``source`` when a key is unknown or a value is bad."""
    known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {unknown}")
    try:
        return cls(**values).validate()  # type: ignore[attr-defined]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: {error}") from error


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object from ``path``; errors name the file."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"missing file: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:  # RecursionError: deep nesting
        raise ValueError(f"corrupt JSON in {path}: {type(error).__name__}: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"corrupt JSON in {path}: expected an object")
    return values
