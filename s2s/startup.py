"""The start of a process that runs s2s: ``python -m s2s`` and ``python app.py``.

Importing torch (and Gradio, for the app) creates a few hundred thousand objects that live until
the process exits. Python's cyclic garbage collector would walk them again and again while they
are created, and once more at exit, finding nothing to free. Measured on the 2-core development
machine (medians of 3 to 5 runs): ``python -c "import torch"`` 1.22 s, 0.94 s with its import
under ``long_lived_imports``; ``import app`` 3.4 s against 2.65 s; the translate command's
start-up for one sentence 1.33 s against 1.08 s.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def long_lived_imports() -> Iterator[None]:
    """Run the block (the imports of an entry point) with the garbage collector off, then move
    every object alive to the collector's permanent generation (``gc.freeze``), which no later
    collection walks, and turn the collector back on as it was. What the block creates and drops
    in cycles stays in memory until exit: use it for imports, not for work."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
