"""Checkpoint folders: data only, so loading never executes code from them.

A model folder holds
- ``config.json``        the ``ModelConfig`` (plain JSON);
- ``model.safetensors``  the weights (safetensors: tensors only, no pickle), fp16 or fp32;
- ``spm.model``          the joint sentencepiece model;
- ``metrics.json``       training and evaluation figures (optional for loading);
- ``README.md``          the model card (optional for loading).
A missing or corrupt file raises an error that names it. Files are written to a temporary
name and renamed, so an interrupted save never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

from .config import ModelConfig, from_dict, read_json
from .architectures import build_model
from .model import EncoderDecoder
from .tokenizer import Tokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "spm.model"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
# With tie_embeddings these share the encoder embedding; they are stored once, under its name.
TIED_ALIASES = ("decoder.embedding.weight", "decoder.output.weight")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, values: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8"))


def save_model(folder: Path, model: EncoderDecoder, tokenizer: Tokenizer, fp16: bool = True) -> None:
    """Write config, weights and tokenizer of ``model`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().to(torch.float16 if fp16 and tensor.is_floating_point() else tensor.dtype)
             .contiguous().clone() for name, tensor in model.state_dict().items()
             if not (model.config.tie_embeddings and name in TIED_ALIASES)}
    write_json(folder / CONFIG_FILE, vars(model.config))
    atomic_write(folder / WEIGHTS_FILE, lambda tmp: save_file(state, str(tmp)))
    atomic_write(folder / TOKENIZER_FILE, lambda tmp: tokenizer.save(tmp))



class _WithoutRandomInit(TorchFunctionMode):
    """Initialisation (any ``nn.init`` function, a tensor's ``normal_`` or ``uniform_``) returns its
    tensor untouched. For meta tensors, which hold no values: the first meta ``normal_`` would
    import some 800 modules (sympy, dynamo), about 2 seconds of every process that loads a model.
    And for a model whose every stored tensor is about to be loaded: drawing 7.8M random numbers
    took 40 of the 100 ms that loading de-en-transformer took."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if (getattr(func, "__module__", None) == "torch.nn.init"
                or getattr(func, "__name__", None) in ("normal_", "uniform_")):
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def _expected_shapes(config: ModelConfig, config_path: Path) -> dict[str, tuple[int, ...]]:
    """The stored tensor names and shapes a model of ``config`` has, computed on the meta device
    (no memory is allocated, nothing initialised), tied aliases left out."""
    try:
        with torch.device("meta"), _WithoutRandomInit():
            model = build_model(config)
    except ValueError as error:
        raise ValueError(f"{config_path}: {error}") from error
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()
            if not (config.tie_embeddings and name in TIED_ALIASES)}


def _check_weights_header(weights_path: Path, expected: dict[str, tuple[int, ...]], config_path: Path) -> None:
    """Compare the tensor names and shapes in the safetensors header with ``expected`` before
    any tensor is read; a mismatch names the tensor, the shapes and both files."""
    if not weights_path.exists():
        raise FileNotFoundError(f"missing file: {weights_path}")
    try:
        with safe_open(str(weights_path), framework="pt") as weights:
            stored = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"corrupt weights file {weights_path}: {error}") from error
    if set(stored) != set(expected):
        missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        raise ValueError(f"{weights_path} does not match {config_path}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, shape in expected.items():
        if stored[name] != shape:
            raise ValueError(f"{weights_path} does not match {config_path}: tensor {name} has shape "
                             f"{list(stored[name])} but the config needs {list(shape)}")


def load_model(folder: Path) -> tuple[EncoderDecoder, Tokenizer]:
    """Rebuild the model and tokenizer saved in ``folder`` (in float32, eval mode)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no model folder at {folder}")
    config = from_dict(ModelConfig, read_json(folder / CONFIG_FILE), str(folder / CONFIG_FILE))
    tokenizer = Tokenizer.load(folder / TOKENIZER_FILE)
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"{folder / TOKENIZER_FILE} has {tokenizer.vocab_size} pieces but "
                         f"{folder / CONFIG_FILE} says vocab_size={config.vocab_size}")
    weights_path = folder / WEIGHTS_FILE
    expected_shapes = _expected_shapes(config, folder / CONFIG_FILE)
    _check_weights_header(weights_path, expected_shapes, folder / CONFIG_FILE)
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"corrupt weights file {weights_path}: {error}") from error
    state = {name: tensor.float() for name, tensor in state.items()}
    for name, tensor in state.items():
        if not bool(tensor.isfinite().all()):
            raise ValueError(f"corrupt weights file {weights_path}: tensor {name} holds NaN or infinite values")
    with _WithoutRandomInit():  # every stored tensor is overwritten below (the header matched them all)
        model = build_model(config)
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        raise ValueError(f"{weights_path} does not match {folder / CONFIG_FILE}: {error}") from error
    return model.eval(), tokenizer


def read_metrics(folder: Path) -> dict[str, Any]:
    """``metrics.json`` of a model folder, or {} when it has none."""
    path = Path(folder) / METRICS_FILE
    return read_json(path) if path.exists() else {}
