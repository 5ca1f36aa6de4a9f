"""How much each attention head of a Transformer matters: the dev BLEU (greedy) lost when that head
alone is switched off (Michel et al. 2019, "Are Sixteen Heads Really Better than One?", Section 3).

A negative loss means the model does better without the head on this data.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .evaluate import corpus_scores
from .heads import HEAD_KINDS
from .translator import DecodeSettings, Translator


def head_names(translator: Translator) -> list[str]:
    """Every head of the model as KIND.LAYER.HEAD (the ``heads_off`` format), encoder first."""
    config = translator.model.config
    if config.arch != "transformer":
        raise ValueError(f"{translator.name} is an RNN: it has no attention heads to measure")
    layers = {"encoder": config.encoder_layers, "decoder": config.decoder_layers, "cross": config.decoder_layers}
    return [f"{kind}.{layer}.{head}" for kind in HEAD_KINDS for layer in range(layers[kind])
            for head in range(config.attention_heads)]


def head_importance(translator: Translator, sources: Sequence[str], references: Sequence[Sequence[str]],
                    batch_size: int = 64, on_head: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """Greedy BLEU of ``sources`` with every head on, then with each head alone off. Returns
    ``{"baseline_bleu", "decoding", "sentences", "heads": {name: {"bleu", "loss"}}}``; ``on_head``
    is told each head's loss as it is measured."""
    names = head_names(translator)

    def bleu(heads_off: str) -> float:
        settings = DecodeSettings(strategy="greedy", split_sentences=False, heads_off=heads_off)
        results = translator.translate_batch(list(sources), settings.validate(), batch_size=batch_size, details=False)
        return corpus_scores([r["text"] for r in results], references)["bleu"]

    baseline = bleu("")
    heads = {}
    for name in names:
        score = bleu(name)
        heads[name] = {"bleu": score, "loss": round(baseline - score, 2)}
        if on_head:
            on_head(name, heads[name]["loss"])
    return {"baseline_bleu": baseline, "decoding": "greedy", "sentences": len(sources), "heads": heads}
