"""Which attention heads a request switches off or steers (multi-head models only)."""

from __future__ import annotations

import dataclasses

import torch

from .config import ModelConfig

HEAD_KINDS = ("encoder", "decoder", "cross")  # encoder self-, decoder self-, encoder-decoder attention


@dataclasses.dataclass(frozen=True)
class HeadSettings:
    """Per-request head controls: ``off`` lists (kind, layer, head) whose output is zeroed;
    steering replaces the cross-attention of layer ``steer_layer`` (-1 = the last) at head
    ``steer_head`` (-1 = every head of that layer)."""

    off: tuple[tuple[str, int, int], ...] = ()
    steer_layer: int = -1
    steer_head: int = -1

    def check(self, config: ModelConfig) -> "HeadSettings":
        """Every head named exists in a model of ``config``; errors name the head."""
        layers = {"encoder": config.encoder_layers, "decoder": config.decoder_layers, "cross": config.decoder_layers}
        for kind, layer, head in self.off:
            if kind not in HEAD_KINDS:
                raise ValueError(f"head kind must be one of {HEAD_KINDS}, got {kind!r}")
            if not (0 <= layer < layers[kind] and 0 <= head < config.attention_heads):
                raise ValueError(f"there is no {kind} head {layer}.{head}: this model has {layers[kind]} layer(s) "
                                 f"of {config.attention_heads} heads (counted from 0)")
        if not -1 <= self.steer_layer < config.decoder_layers:
            raise ValueError(f"steer_layer must be -1 (the last) or a layer in [0, {config.decoder_layers - 1}]")
        if not -1 <= self.steer_head < config.attention_heads:
            raise ValueError(f"steer_head must be -1 (every head) or a head in [0, {config.attention_heads - 1}]")
        return self

    def keep(self, kind: str, layer: int, heads: int) -> torch.Tensor | None:
        """[heads] multipliers (0 = off) of layer ``layer`` of ``kind``, or None when all are on."""
        off = [head for k, l, head in self.off if k == kind and l == layer]
        if not off:
            return None
        keep = torch.ones(heads)
        keep[off] = 0.0
        return keep

    def cross_off_in_layer(self, layer: int) -> tuple[int, ...]:
        """The cross-attention heads of ``layer`` that are switched off (what ``last_layer_average``
        leaves out of the shown matrix)."""
        return tuple(head for kind, number, head in self.off if kind == "cross" and number == layer)

    @property
    def is_default(self) -> bool:
        return self == NO_HEAD_SETTINGS


NO_HEAD_SETTINGS = HeadSettings()


def parse_heads(text: str) -> tuple[tuple[str, int, int], ...]:
    """The ``heads_off`` setting: "cross.1.2, encoder.0.3" -> (("cross", 1, 2), ("encoder", 0, 3)),
    sorted and without repeats; the format is checked here, the ranges by ``HeadSettings.check``."""
    heads = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, numbers = item.partition(".")
        layer, _, head = numbers.partition(".")
        if kind not in HEAD_KINDS or not layer.isdigit() or not head.isdigit():
            raise ValueError(f"heads_off: {item!r} is not KIND.LAYER.HEAD (KIND one of {', '.join(HEAD_KINDS)}, "
                             "e.g. cross.0.3)")
        heads.add((kind, int(layer), int(head)))
    return tuple(sorted(heads))


def last_layer_average(cross: torch.Tensor, off: tuple[int, ...] = ()) -> torch.Tensor:
    """The one matrix shown for a multi-head model: cross-attention [..., layers, heads, S] -> the
    average over the last layer's heads that are on (``off``: those switched off, whose weights
    reach nothing) [..., S], still a distribution over the source. With every head of the last
    layer off, nothing of it reaches the output; the average of all its heads is shown then."""
    last = cross[..., -1, :, :]
    kept = [head for head in range(last.size(-2)) if head not in off]
    if not kept or len(kept) == last.size(-2):
        return last.mean(-2)
    return last[..., kept, :].mean(-2)
