"""The models a user can pick: every folder with a ``config.json`` under a root folder.

Models load on first use and stay cached; a folder that fails to load is reported by name
with its error, and the other models keep working. A folder added later (for example by
``python -m s2s train --out checkpoints/mine``, or the app's Train tab) shows up on the next
``names()`` call, and a model retrained in place is loaded again. Folders starting with ``.``
(training jobs, a model being published) are not models.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_metrics
from .saliency import DEFAULT_MEMORY_BUDGET
from .translator import Translator, source_language


class ModelCatalog:
    def __init__(self, root: Path, default: str | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.root = Path(root)
        self.default = default
        self.memory_budget = memory_budget  # bytes one search may hold, for every model loaded
        self._loaded: dict[str, tuple[Translator, int]] = {}  # with the weights' mtime
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Model folder names, the default first, then alphabetical."""
        if not self.root.is_dir():
            return []
        names = sorted(p.name for p in self.root.iterdir()
                       if (p / CONFIG_FILE).is_file() and not p.name.startswith("."))
        if self.default in names:
            names.remove(self.default)
            names.insert(0, self.default)
        return names

    def get(self, name: str) -> Translator:
        """The loaded model ``name``; raises ValueError with a readable reason if it cannot load."""
        if name not in self.names():
            raise ValueError(f"unknown model {name!r}; available: {', '.join(self.names()) or 'none'}")
        weights = self.root / name / WEIGHTS_FILE
        with self._lock:
            version = weights.stat().st_mtime_ns if weights.is_file() else None
            if name not in self._loaded or self._loaded[name][1] != version:  # new, or retrained in place
                try:
                    self._loaded[name] = (Translator.load(self.root / name, memory_budget=self.memory_budget),
                                          version)
                except (OSError, ValueError) as error:
                    raise ValueError(f"model {name!r} failed to load: {error}") from error
            return self._loaded[name][0]

    def summary(self, name: str) -> dict[str, Any]:
        """What the model card says, in brief: title, description, data and scores."""
        try:
            metrics = read_metrics(self.root / name)
        except ValueError as error:
            return {"name": name, "error": str(error)}
        return {
            "name": name,
            "title": metrics.get("title", name),
            "description": metrics.get("description", ""),
            "data": metrics.get("data", {}).get("train", []),
            "attention": metrics.get("model", {}).get("attention"),
            "parameters": metrics.get("parameters"),
            "dev": metrics.get("dev", {}),
            "evaluation": metrics.get("evaluation", {}),
            "training_profile": metrics.get("training_profile", {}),
            "source_language": source_language(name, metrics),
            "toy_task": metrics.get("toy_task"),
        }
