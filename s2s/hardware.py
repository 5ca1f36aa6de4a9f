"""Where training runs and in which precision: ``--device auto|cpu|cuda``, ``--precision fp32|bf16``.

``auto`` is CUDA when PyTorch sees a GPU, else the CPU. ``bf16`` runs the forward passes under
``torch.autocast`` in bfloat16 (the weights, the optimiser and the loss stay float32), so a
checkpoint from a bf16 or GPU run is the same float32-trained folder that loads on any CPU.
Asking for what the machine cannot do gets a message, not a crash later: CUDA without a GPU,
bf16 on a GPU without it, bf16 on a CPU without native bfloat16 arithmetic (AVX512-BF16 or AMX),
where autocast would be emulated and slower than float32.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ContextManager

import torch

from .config import DEVICES, PRECISIONS

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (Linux: the flags in /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def training_device(choice: str, local_rank: int = 0) -> torch.device:
    """The device ``choice`` names on this machine; a GPU process uses GPU ``local_rank``."""
    if choice not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA GPU on this machine (torch.cuda.is_available() is "
                         "False); train with --device cpu")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise ValueError(f"process {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                         "start at most that many processes per machine")
    return torch.device("cuda", local_rank)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision this device cannot run natively, with the reason."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("--precision bf16: this GPU has no bfloat16 support; train with --precision fp32")
    if device.type == "cpu" and not cpu_has_native_bfloat16():
        raise ValueError("--precision bf16: this CPU has no native bfloat16 arithmetic (AVX512-BF16 or AMX), so "
                         "bf16 would be emulated and slower than fp32; train with --precision fp32")


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The context the forward passes run in: bfloat16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
