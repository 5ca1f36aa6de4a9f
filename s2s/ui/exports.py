"""JSON exports of the explorer, written only when a person asks, into one folder per server
process that never holds more than ``keep`` files and is removed when the process exits.

The explorer puts that folder inside Gradio's cache folder: Gradio serves a file from there as it
is, where it would copy a file from anywhere else into its cache, one copy per export, which
its ``delete_cache`` sweep did not remove in a soak run (``scripts/soak_app.py``). So a server
left up for weeks keeps at most ``keep`` export files on disk.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


class ExportFolder:
    def __init__(self, parent: Path | None = None, keep: int = 64) -> None:
        self.keep = keep
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="s2s-exports-", dir=parent))
        self._lock = threading.Lock()
        atexit.register(shutil.rmtree, self.root, True)

    def write(self, payload: dict[str, Any], name: str) -> Path:
        """Write ``payload`` as ``s2s-<name>-<time>.json``, first deleting the oldest files beyond ``keep - 1``."""
        safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:60] or "result"
        with self._lock:
            files = sorted(self.root.glob("*.json"), key=lambda path: path.stat().st_mtime)
            for old in files[: max(0, len(files) - self.keep + 1)]:
                old.unlink(missing_ok=True)
            handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.root, delete=False,
                                                 prefix=f"s2s-{safe_name}-{time.strftime('%Y%m%d-%H%M%S')}-",
                                                 suffix=".json")
            with handle:
                json.dump(payload, handle, ensure_ascii=False, indent=1)
            return Path(handle.name)

    def count(self) -> int:
        return len(list(self.root.glob("*.json")))
