"""How a loaded model holds its weights for inference (``--weights``; training is always float32).

- ``fp32``: as trained.
- ``bf16-output``: the decoder's output layer in bfloat16 (``BFloat16Linear``), the largest matrix
  read at every search step; faster on CPUs with native bfloat16 (AVX512-BF16, AMX).
- ``int8``: every linear layer and RNN in int8, activations quantized on the fly per call
  (PyTorch's dynamic quantization, as in its "dynamic quantization on an LSTM" tutorial): a
  quarter of the bytes of float32 read at every step, which is what a beam step on a CPU waits
  for. Outputs differ slightly from float32 (the model cards give BLEU for each). There are no
  gradients through int8 layers, so saliency needs ``fp32`` or ``bf16-output``. ``torch.ao``'s
  dynamic quantization is deprecated upstream in favour of torchao, which quantizes no GRU or
  LSTM; it works in the pinned torch 2.13.

Both reduced precisions turn the loaded model, in place, into one for inference only: it is never
trained, and its output layer is no longer tied to the embeddings.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

WEIGHTS = {"fp32": "float32 weights", "bf16-output": "bf16 output layer", "int8": "int8 weights"}  # name: what it is
DEFAULT_WEIGHTS = "fp32"


class BFloat16Linear(nn.Module):
    """Inference-only copy of a linear layer whose weights are kept in bfloat16.

    x [..., in] float32 -> y [..., out] float32, computed in bfloat16. Half the bytes of the
    float32 layer are read per call; on CPUs with native bfloat16 (AVX512-BF16, AMX) that makes
    the decoder's output layer about 3x faster.
    """

    def __init__(self, layer: nn.Linear) -> None:
        super().__init__()
        self.register_buffer("weight", layer.weight.detach().to(torch.bfloat16))
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.to(torch.bfloat16), self.weight, self.bias).float()


def plain_linear(layer: nn.Linear) -> nn.Linear:
    """An ``nn.Linear`` holding ``layer``'s parameters (a subclass such as ``model.OutputLayer`` is
    not quantized: dynamic quantization swaps modules of exactly that type)."""
    plain = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, device="meta")
    plain.weight, plain.bias = layer.weight, layer.bias
    return plain


def check_weights(weights: str) -> str:
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    return weights


def with_weights(model: nn.Module, weights: str) -> nn.Module:
    """The model (changed in place) holding its weights as ``weights`` says; eval mode for the
    reduced precisions, which are for inference only."""
    if check_weights(weights) == "fp32":
        return model
    model.eval()
    if weights == "bf16-output":
        model.decoder.output = BFloat16Linear(model.decoder.output)
        return model
    model.decoder.output = plain_linear(model.decoder.output)
    with warnings.catch_warnings():  # torch 2.13 (pinned) warns that this API will move to torchao
        warnings.filterwarnings("ignore", message=r".*quantiz.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*",
                                category=DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.GRU, nn.LSTM}, dtype=torch.qint8,
                                                      inplace=True)


def require_gradients(weights: str, needed_by: str) -> None:
    """Refuse, with the reason, work that needs gradients through a model held as ``weights``."""
    if check_weights(weights) == "int8":
        raise ValueError(f"{needed_by} needs gradients, which int8 weights have not: use fp32 or bf16-output weights")
