"""Start the s2s explorer (Gradio) with the models in ``checkpoints/``, offline, on the CPU.

    python app.py [--host 127.0.0.1] [--port 7860]

To serve a class on the local network: ``--host 0.0.0.0``; with ``--auth-file FILE`` (lines of
``user:password``) or ``S2S_AUTH=user:password`` everyone logs in first (Gradio's own login).
The page lives in ``s2s/ui/``.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage reporting

from s2s.ui.explorer import ASSETS, build_app  # noqa: E402  (gradio reads the setting above at import)
from s2s.saliency import DEFAULT_MEMORY_BUDGET  # noqa: E402
from s2s.ui.guard import web_protections  # noqa: E402
from s2s.uploads import MAX_UPLOAD_BYTES  # noqa: E402


def read_logins(path: Path | None, variable: str | None) -> list[tuple[str, str]] | None:
    """``user:password`` pairs from a file (one per line) and/or an environment variable value."""
    lines = (path.read_text(encoding="utf-8").splitlines() if path else []) + ([variable] if variable else [])
    logins = [tuple(line.strip().split(":", 1)) for line in lines if line.strip() and not line.startswith("#")]
    bad = [pair[0] for pair in logins if len(pair) != 2 or not all(pair)]
    if bad:
        raise SystemExit(f"error: a login must be user:password, got {bad[0]!r}")
    return logins or None  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description="Start the s2s explorer.")
    parser.add_argument("--host", default=os.environ.get("S2S_HOST", "127.0.0.1"),
                        help="address to listen on; 0.0.0.0 serves the local network (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("S2S_PORT", "7860")))
    parser.add_argument("--auth-file", type=Path, help="file of user:password lines; everyone must log in")
    parser.add_argument("--max-batch", type=int, default=32,
                        help="concurrent requests decoded together (1 = each alone)")
    parser.add_argument("--concurrency", type=int, default=8, help="page events run at once")
    parser.add_argument("--queue-size", type=int, default=256,
                        help="requests that may wait; beyond it a request is told the queue is full")
    parser.add_argument("--session-capacity", type=int, default=500,
                        help="sessions whose last results the server keeps (Gradio keeps every output of a "
                             "session; the least recently used beyond this are dropped, bounding memory)")
    parser.add_argument("--memory-budget-mb", type=int, default=DEFAULT_MEMORY_BUDGET // 2**20,
                        help="memory one search or saliency request may hold at once: larger batches are "
                             "split, and a sentence over it is refused up front with a message")
    parser.add_argument("--allow-framing", action="store_true",
                        help="let other sites put the explorer in a frame (default: same origin only)")
    args = parser.parse_args()
    logins = read_logins(args.auth_file, os.environ.get("S2S_AUTH"))
    demo = build_app(max_batch=args.max_batch, concurrency=args.concurrency, queue_size=args.queue_size,
                     memory_budget_mb=args.memory_budget_mb)
    # A service manager's stop (SIGTERM) cleans up as Ctrl-C does (the export folder, the jobs' state).
    signal.signal(signal.SIGTERM, stop)
    demo.launch(server_name=args.host, server_port=args.port, css_paths=[ASSETS / "style.css"],
                footer_links=["api"], auth=logins, state_session_capacity=args.session_capacity,
                max_file_size=MAX_UPLOAD_BYTES,
                app_kwargs={"middleware": web_protections(allow_framing=args.allow_framing)})


def stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
