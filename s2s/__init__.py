"""s2s: a compact attention encoder-decoder whose search explains itself.

    import s2s
    translator = s2s.load("checkpoints/en-fr")
    result = translator.translate("How are you?", strategy="beam", beam_size=5, nbest=3)

The names below load ``s2s.translator`` (and torch) when first used, not at ``import s2s``: an
entry point can then set up the process before torch's import (``s2s.startup``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .translator import DecodeSettings, Translator, load

__all__ = ["DecodeSettings", "Translator", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".translator", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
