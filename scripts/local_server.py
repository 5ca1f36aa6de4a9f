"""Start ``app.py`` (or the REST API alone, ``python -m s2s serve``) on a free 127.0.0.1 port for a
benchmark or a test, and call its ``/translate`` as a client would (Gradio's REST API)."""

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
    with _running(["app.py", *options], "/", env) as started:
        yield started


@contextlib.contextmanager
def running_rest(*options: str, env: dict[str, str] | None = None) -> Iterator[RunningApp]:
    """``python -m s2s serve OPTIONS`` (the REST API alone) on loopback, as ``running_app``."""
    with _running(["-m", "s2s", "serve", *options], "/healthz", env) as started:
        yield started


@contextlib.contextmanager
def _running(arguments: list[str], ready_path: str, env: dict[str, str] | None) -> Iterator[RunningApp]:
    """``python ARGUMENTS --host 127.0.0.1 --port P`` until ``ready_path`` answers 200."""
    port = free_port()
    log = tempfile.TemporaryFile("w+", encoding="utf-8")
    server = subprocess.Popen([sys.executable, *arguments, "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                                   **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(base + ready_path):
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"the server did not start (exit code {server.poll()}):\n{log.read()[-3000:]}")
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


def worker_processes(pid: int) -> list[int]:
    """The worker processes uvicorn's supervisor ``pid`` spawned (not its resource tracker), from /proc."""
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()
            and _parent(int(entry.name)) == pid and b"spawn_main" in _command(int(entry.name))]


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
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
