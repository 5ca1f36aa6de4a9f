"""The architectures a ``ModelConfig`` can name, built from it in one place."""

from __future__ import annotations

from .config import ModelConfig
from .model import EncoderDecoder, Seq2Seq
from .transformer import Transformer


def build_model(config: ModelConfig) -> EncoderDecoder:
    """The model ``config.arch`` names, freshly initialised."""
    return Transformer(config) if config.arch == "transformer" else Seq2Seq(config)
