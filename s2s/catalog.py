"""The models a user can pick: every folder with a ``config.json`` under a root folder.

Models load on first use; the ``max_loaded`` most recently used stay loaded and the others are
let go (a server up for a term, with models trained in the page, keeps a bounded number in
memory). A model loads outside the catalog's lock, so a cold load of one model never holds up
requests for the models already loaded (two requests for the same cold model wait for one load).
A folder that fails to load is reported by name with its error, and the other models keep working.
A folder added later (for example by ``python -m s2s train --out checkpoints/mine``, or the app's
Train tab) shows up on the next ``names()`` call, and a model retrained in place is loaded again.
Folders starting with ``.`` (training jobs, a model being published) are not models.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

from .admission import malloc_trim
from .checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_metrics
from .saliency import DEFAULT_MEMORY_BUDGET
from .translator import Translator, source_language


DEFAULT_MAX_LOADED = 4  # models kept loaded at once


class ModelCatalog:
    def __init__(self, root: Path, default: str | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 max_loaded: int = DEFAULT_MAX_LOADED) -> None:
        if not isinstance(max_loaded, int) or max_loaded < 1:
            raise ValueError(f"max_loaded must be a positive integer, got {max_loaded!r}")
        self.root = Path(root)
        self.default = default
        self.memory_budget = memory_budget  # bytes one search may hold, for every model loaded
        self.max_loaded = max_loaded
        # name -> (translator, the weights' mtime), least recently used first
        self._loaded: collections.OrderedDict[str, tuple[Translator, int | None]] = collections.OrderedDict()
        self._lock = threading.Lock()  # guards _loaded and _loading, never held while loading
        self._loading: dict[str, threading.Lock] = {}  # one per model being loaded
        self._failed: dict[str, tuple[int | None, str]] = {}  # name -> (the weights' mtime, why it failed)

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
        loaded = self._cached(name, weights)
        if loaded is not None:
            return loaded
        with self._lock:
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:  # one load of a model at a time; other models go on
            loaded = self._cached(name, weights)  # loaded by the request this one waited for
            if loaded is not None:
                return loaded
            version = weights.stat().st_mtime_ns if weights.is_file() else None
            try:
                translator = Translator.load(self.root / name, memory_budget=self.memory_budget)
            except (OSError, ValueError) as error:
                with self._lock:
                    self._failed[name] = (version, str(error))
                raise ValueError(f"model {name!r} failed to load: {error}") from error
            with self._lock:
                self._failed.pop(name, None)
                self._loaded[name] = (translator, version)
                self._loaded.move_to_end(name)
                evicted = [self._loaded.popitem(last=False) for _ in range(len(self._loaded) - self.max_loaded)]
            if evicted:  # requests under way keep theirs until done; the rest is given back to the system
                del evicted
                malloc_trim()
            return translator

    def _cached(self, name: str, weights: Path) -> Translator | None:
        """The loaded model ``name`` if its weights have not changed since it loaded, else None."""
        version = weights.stat().st_mtime_ns if weights.is_file() else None
        with self._lock:
            if name in self._loaded and self._loaded[name][1] == version:
                self._loaded.move_to_end(name)
                return self._loaded[name][0]
        return None

    def loaded(self) -> list[str]:
        """The models loaded now, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def summary(self, name: str) -> dict[str, Any]:
        """What the model card says, in brief: title, description, data and scores; or ``error``
        for a folder whose card cannot be read or whose model failed to load (until it changes)."""
        try:
            metrics = read_metrics(self.root / name)
        except ValueError as error:
            return {"name": name, "error": str(error)}
        weights = self.root / name / WEIGHTS_FILE
        version = weights.stat().st_mtime_ns if weights.is_file() else None
        with self._lock:
            failed = self._failed.get(name)
        if failed and failed[0] == version:  # it failed to load, and has not changed since
            return {"name": name, "error": failed[1]}
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
