"""Start ``app.py`` on a free 127.0.0.1 port for a benchmark, and call its ``/translate`` as a
client would (Gradio's REST API)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resident_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RunningApp(NamedTuple):
    """A started app: its URL, its process, and what it has printed so far (stdout and stderr)."""

    url: str
    process: subprocess.Popen
    log: Callable[[], str]


@contextlib.contextmanager
def running_app(*options: str, env: dict[str, str] | None = None) -> Iterator[RunningApp]:
    """``python app.py OPTIONS`` on loopback (offline); yields a ``RunningApp`` and stops it
    after. An app that exits or does not answer within 120 s raises, with what it printed."""
    port = free_port()
    log = tempfile.TemporaryFile("w+", encoding="utf-8")
    server = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), *options],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                                   **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(base):
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"the app did not start (exit code {server.poll()}):\n{log.read()[-3000:]}")
            time.sleep(0.5)
        def printed() -> str:
            log.flush()
            log.seek(0)
            text = log.read()
            log.seek(0, os.SEEK_END)
            return text

        yield RunningApp(base, server, printed)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _answers(base: str) -> bool:
    try:
        return httpx.get(base, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def api_defaults(base: str) -> list[Any]:
    """Every /translate parameter's default, as the API page lists them (model and text first)."""
    info = httpx.get(f"{base}/gradio_api/info", timeout=30).json()
    return [p.get("parameter_default") for p in info["named_endpoints"]["/translate"]["parameters"]]


class ApiClient:
    """One client of ``/translate`` through Gradio's REST API, on one kept-alive connection.

    ``keep_session=True`` sends the same session hash with every call, as a browser tab or a
    ``gradio_client.Client`` does; ``False`` lets every call start a new server session, as a
    one-off ``curl`` does (the server then sets up a session per call)."""

    def __init__(self, base: str, defaults: list[Any], keep_session: bool) -> None:
        self.base, self.defaults = base, defaults
        self.session = uuid.uuid4().hex if keep_session else None
        self.http = httpx.Client(timeout=300)

    def translate(self, model: str, text: str) -> float:
        """One ``/translate`` call; returns its seconds. A failed call raises with its answer."""
        started = time.perf_counter()
        body = {"data": [model, text, *self.defaults[2:]], "session_hash": self.session}
        event = self.http.post(f"{self.base}/gradio_api/call/translate", json=body).json()["event_id"]
        with self.http.stream("GET", f"{self.base}/gradio_api/call/translate/{event}") as stream:
            answer = b"".join(stream.iter_bytes())  # not parsed: the client should cost the server no CPU
        if b"event: complete" not in answer:
            raise RuntimeError(f"call failed: {answer[-300:]!r}")
        return time.perf_counter() - started

    def close(self) -> None:
        self.http.close()
