"""Start the s2s explorer (Gradio) with the models in ``checkpoints/``, offline, on the CPU, and
the REST API (``/v1/``, LibreTranslate's ``/translate`` and ``/languages``) on the same port.

    python app.py [--host 127.0.0.1] [--port 7860]

To serve a class on the local network: ``--host 0.0.0.0``; with ``--auth-file FILE`` (lines of
``user:password``) or ``S2S_AUTH=user:password`` everyone logs in first (Gradio's own login;
HTTP Basic for the REST API). The page lives in ``s2s/ui/``, the REST API in ``s2s/rest.py``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage reporting

from s2s.startup import long_lived_imports  # noqa: E402

with long_lived_imports():  # Gradio's and torch's imports, about a fifth faster (see s2s.startup)
    import gradio as gr  # (gradio reads the setting above at import)
    import uvicorn

    from s2s.admission import limit_malloc_arenas
    from s2s.catalog import DEFAULT_MAX_LOADED
    from s2s.logins import read_api_keys, read_logins
    from s2s.rest import create_app
    from s2s.saliency import DEFAULT_MEMORY_BUDGET
    from s2s.ui import explorer
    from s2s.web_guard import FailedLogins, web_protections
    from gradio.utils import get_upload_folder
    from starlette.middleware import Middleware

    from s2s.uploads import MAX_UPLOAD_BYTES, UploadGuard


def main() -> None:
    parser = argparse.ArgumentParser(description="Start the s2s explorer.")
    parser.add_argument("--host", default=os.environ.get("S2S_HOST", "127.0.0.1"),
                        help="address to listen on; 0.0.0.0 serves the local network (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("S2S_PORT", "7860")))
    parser.add_argument("--auth-file", type=Path, help="file of user:password lines; everyone must log in")
    parser.add_argument("--api-keys-file", type=Path,
                        help="file of API keys, one per line (or $S2S_API_KEYS, comma-separated): LibreTranslate "
                             "clients send one as api_key, other programs as ?api_key=")
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
    parser.add_argument("--max-loaded-models", type=int, default=DEFAULT_MAX_LOADED,
                        help="models kept loaded at once; the least recently used beyond it are let go")
    parser.add_argument("--allow-framing", action="store_true",
                        help="let other sites put the explorer in a frame (default: same origin only)")
    args = parser.parse_args()
    limit_malloc_arenas()  # before the server's threads start (s2s.admission)
    logins = read_logins(args.auth_file, os.environ.get("S2S_AUTH"))
    api_keys = read_api_keys(args.api_keys_file, os.environ.get("S2S_API_KEYS"))
    failures = FailedLogins()  # one count of failed logins for the page, HTTP Basic and API keys
    demo = explorer.build_app(max_batch=args.max_batch, concurrency=args.concurrency, queue_size=args.queue_size,
                              memory_budget_mb=args.memory_budget_mb)
    demo.state_session_capacity = args.session_capacity
    if args.max_loaded_models < 1:
        parser.error("--max-loaded-models must be at least 1")
    explorer.service.catalog.max_loaded = args.max_loaded_models
    # The REST API is the outer app (one service with the page); the page is mounted under it.
    # Uploads are kept briefly and within a quota (s2s.uploads.UploadGuard).
    middleware = web_protections(args.allow_framing, failures) + [Middleware(UploadGuard, folder=get_upload_folder())]
    app = create_app(explorer.service, logins, middleware=middleware, api_keys=api_keys, failures=failures)
    app = gr.mount_gradio_app(app, demo, path="", auth=logins, max_file_size=MAX_UPLOAD_BYTES,
                              css_paths=[explorer.ASSETS / "style.css"], footer_links=["api"])
    print(f"* Running on local URL:  http://{args.host}:{args.port}  (REST API: /v1/docs)", flush=True)
    # uvicorn stops on SIGTERM (a service manager's stop) as on Ctrl-C, answering the requests in
    # flight, then hands the signal to the handler that was there before it: exit normally, so
    # that the export folder is removed (atexit).
    signal.signal(signal.SIGTERM, exit_cleanly)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)


def exit_cleanly(signum: int, frame: Any) -> None:
    sys.exit(0)


if __name__ == "__main__":
    main()
