"""No single request can take the server down: bounded memory and admission for every model
call, uploads that cannot fill memory or disk, and the web's ordinary protections."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest

from s2s.admission import Busy, Gate
from s2s.uploads import MAX_LINE_BYTES, read_upload
from scripts.local_server import running_app
from tests.conftest import reverse_task, write_tsv

ROOT = Path(__file__).resolve().parent.parent


def test_the_gate_refuses_beyond_its_limit_and_lets_other_work_through() -> None:
    gate = Gate({"saliency": 1}, max_wait=0.2)
    entered, leave = threading.Event(), threading.Event()

    def long_saliency() -> None:
        with gate.admit("saliency"):
            entered.set()
            leave.wait(5)

    worker = threading.Thread(target=long_saliency)
    worker.start()
    try:
        assert entered.wait(5)
        started = time.monotonic()
        with pytest.raises(Busy, match="busy with other saliency requests"):
            with gate.admit("saliency"):
                pass
        assert time.monotonic() - started < 2  # a bounded wait, not a queue without end
        with gate.admit("decode"):  # a translation still gets in
            pass
    finally:
        leave.set()
        worker.join()
    with gate.admit("saliency"):  # the slot is free again
        pass


def test_a_gz_bomb_is_refused_with_the_memory_of_one_line(tmp_path: Path) -> None:
    one_line = tmp_path / "one-line.tsv.gz"
    with gzip.open(one_line, "wb") as out:  # 200 MB of one line, 200 KB on disk
        for _ in range(200):
            out.write(b"a" * 2**20)
    many_lines = tmp_path / "many-lines.tsv.gz"
    with gzip.open(many_lines, "wb") as out:  # 60 MB of valid lines
        line = b"the big cat sleeps on the red chair in the sun\tle gros chat dort sur la chaise rouge au soleil\n"
        out.write(line * (60 * 2**20 // len(line)))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=f"line 1: longer than {MAX_LINE_BYTES:,} bytes"):
            read_upload([one_line])
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 2 * 2**20, peak
        with pytest.raises(ValueError, match="more than 50 MB unpacked"):
            read_upload([many_lines])
    finally:
        tracemalloc.stop()


def test_saliency_of_a_long_sentence_stays_within_its_memory_budget() -> None:
    # In a process of its own, so that its peak resident memory is this request's alone.
    program = """
import resource, sys, s2s
translator = s2s.load("checkpoints/en-fr")
text = ("the young doctor told my older brother that the small village near the river had no school and no "
        "hospital so every family walked for hours each day to reach the town where the market and the old "
        "church stood beside the road")
ids = translator.translate(text, strategy="greedy")["sentences"][0]["hypotheses"][0]["ids"]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = translator.saliency(text, ids, "integrated_gradients", steps=4, memory_budget=128 * 2**20)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(len(text.split()), len(ids), round(grown), len(result["relevance"]))
"""
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    words, pieces, grown_mb, rows = map(int, done.stdout.split())
    assert words >= 40 and rows == pieces
    assert grown_mb < 128 * 1.5, f"peak memory grew by {grown_mb} MB for a 128 MB budget"


def test_uploads_are_deleted_once_read_whether_the_job_starts_or_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradio.utils import get_upload_folder

    from s2s.jobs import RUNNING, JobBoard
    from s2s.ui.train_tab import UPLOAD, discard_uploads, start_job

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    upload_folder = Path(get_upload_folder())
    for name in ("a1", "b2"):  # Gradio puts each upload in a folder of its own
        (upload_folder / name).mkdir(parents=True)
    good = write_tsv(upload_folder / "a1" / "pairs.tsv", reverse_task(300, seed=4))
    bad = upload_folder / "b2" / "bad.tsv"
    bad.write_text("no tab on this line\n", encoding="utf-8")
    board = JobBoard(tmp_path / "checkpoints")
    values = {"data": UPLOAD, "task": "", "dev_upload": None, "name": "up", "rnn_type": "gru",
              "attention": "bahdanau", "embedding_dim": 0, "hidden": 0, "vocab_size": 0, "minutes": 1 / 60,
              "probe": "", "overwrite": False}
    refused = start_job(board, values | {"uploads": [str(bad)]}, Gate())
    assert "Not started" in refused and not bad.exists() and not bad.parent.exists()
    started = start_job(board, values | {"uploads": [str(good)]}, Gate())
    assert "started" in started and not good.exists() and not good.parent.exists()
    assert (board.latest().folder / "data").is_dir()  # the job's own copy of the data
    mine = write_tsv(tmp_path / "mine.tsv", reverse_task(5, seed=5))
    discard_uploads([mine])  # a caller's own file, outside Gradio's upload folder, is left alone
    assert mine.exists()
    deadline = time.monotonic() + 180
    while board.latest().status()["state"] == RUNNING and time.monotonic() < deadline:
        time.sleep(1)


def test_headers_login_throttle_and_sigterm(tmp_path: Path) -> None:
    logins = tmp_path / "logins"
    logins.write_text("teacher:right-password\n", encoding="utf-8")
    gradio_tmp = tmp_path / "gradio"
    with running_app("--auth-file", str(logins), env={"GRADIO_TEMP_DIR": str(gradio_tmp)}) as app:
        page = httpx.get(app.url, timeout=30)
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "same-origin"
        login = lambda password: httpx.post(f"{app.url}/login", timeout=30,  # noqa: E731
                                            data={"username": "teacher", "password": password})
        assert login("right-password").status_code == 200
        codes = [login("wrong").status_code for _ in range(12)]
        assert codes[:10] == [400] * 10 and codes[10:] == [429, 429]
        refused = login("wrong")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        exports = list(gradio_tmp.glob("s2s-exports-*"))
        assert exports, "the export folder is made at start"
        app.process.send_signal(signal.SIGTERM)
        app.process.wait(timeout=60)
        assert not any(gradio_tmp.glob("s2s-exports-*")), app.log()[-2000:]
