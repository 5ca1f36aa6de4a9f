"""The REST API (s2s.rest) through FastAPI's TestClient: the Python API's results, its errors
as HTTP, LibreTranslate's routes, and ``python -m s2s serve`` as a process."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from s2s import schema
from s2s.admission import Gate
from s2s.rest import create_app
from s2s.service import Service
from scripts.local_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_translate_answers_what_the_python_api_answers_one_text_or_many_in_order(
        client: TestClient, service: Service) -> None:
    one = client.post("/v1/translate", json={"model": "en-fr", "text": "the big cat runs", "beam_size": 3, "nbest": 2})
    assert one.status_code == 200
    expected = service.catalog.get("en-fr").translate("the big cat runs", beam_size=3, nbest=2)
    got = one.json()
    assert [[h["ids"] for h in s["hypotheses"]] for s in got["sentences"]] == \
        [[h["ids"] for h in s["hypotheses"]] for s in expected["sentences"]]
    assert got["settings"] == expected["settings"] and got["text"] == expected["text"]
    texts = ["red bird", "the cat", "dog eats the small green bird"]
    many = client.post("/v1/translate", json={"text": texts, "strategy": "greedy"}).json()
    assert [r["source"] for r in many] == texts


def test_the_schema_describes_the_json_exactly(service: Service) -> None:
    translator = service.catalog.get("en-fr")
    result = translator.translate("the big cat runs. red bird", beam_size=3, nbest=3)
    assert schema.Result.model_validate(result).model_dump() == json.loads(json.dumps(result))
    best = result["sentences"][0]["hypotheses"][0]
    steered = translator.redecode("the big cat runs", best["ids"][:1], steering={1: [1.0] * 5})
    assert schema.Sentence.model_validate(steered).model_dump() == json.loads(json.dumps(steered))


@pytest.mark.parametrize("body, status, where", [
    ({"text": "the cat", "beam_size": 0}, 422, "beam_size"),
    ({"text": "the cat", "beam_size": 3, "nbest": 4}, 422, "nbest"),
    ({"text": "the cat", "temperature": "hot"}, 422, "temperature"),
    ({"text": "the cat", "colour": "red"}, 422, "colour"),
    ({"model": "xx-yy", "text": "the cat"}, 404, "en-fr"),
    ({"text": []}, 422, "at least 1 item"),
])
def test_bad_requests_are_answered_with_the_status_and_the_field(client: TestClient, body: dict, status: int,
                                                                 where: str) -> None:
    answer = client.post("/v1/translate", json=body)
    assert answer.status_code == status, answer.text
    assert where in answer.text


def test_a_body_over_a_megabyte_is_refused_before_it_is_read(client: TestClient) -> None:
    answer = client.post("/v1/translate", content=b'{"text": "' + b"a" * (2**20 + 10) + b'"}',
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413


def test_logins_are_asked_for_with_http_basic(service: Service) -> None:
    client = TestClient(create_app(service, logins=[("teacher", "secret")]))
    assert client.post("/v1/translate", json={"text": "the cat"}).status_code == 401
    assert client.get("/healthz").status_code == 200  # a load balancer's check needs no login
    token = base64.b64encode(b"teacher:secret").decode()
    assert client.post("/v1/translate", json={"text": "the cat"},
                       headers={"authorization": f"Basic {token}"}).status_code == 200
    wrong = base64.b64encode(b"teacher:guess").decode()
    refused = client.post("/translate", json={"q": "the cat", "source": "en", "target": "fr"},
                          headers={"authorization": f"Basic {wrong}"})  # LibreTranslate's shape
    assert refused.status_code == 403 and "error" in refused.json()
    assert client.get("/languages").status_code == 200  # as LibreTranslate's: it tells no secret


def test_a_busy_server_answers_503_with_retry_after(service: Service, client: TestClient) -> None:
    service.gate = Gate({"decode": 1}, max_wait=0.05)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with service.gate.admit("decode"):
            held.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        held.wait(5)
        answer = client.post("/v1/translate", json={"text": "the cat"})
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
    finally:
        release.set()
        worker.join()


def test_the_what_if_routes(client: TestClient) -> None:
    alternatives = client.post("/v1/alternatives", json={"text": "the big cat runs", "alternatives": 3}).json()
    assert len(alternatives["alternatives"]) == len(alternatives["ids"])
    redecoded = client.post("/v1/redecode", json={"text": "the big cat runs", "position": 0, "replacement": "dog"})
    assert redecoded.status_code == 200 and redecoded.json()["hypotheses"][0]["forced"] >= 1
    steered = client.post("/v1/override", json={"text": "the big cat runs", "step": 1, "steer": [0]}).json()
    assert steered["steered"] == [1] and steered["hypotheses"][0]["attention"][1][0] == pytest.approx(1.0)
    salient = client.post("/v1/saliency", json={"text": "the big cat runs", "method": "input_x_gradient"}).json()
    assert len(salient["relevance"]) == len(salient["pieces"])
    scored = client.post("/v1/score", json={"text": "the big cat runs", "target": "runs cat big the"}).json()
    assert scored["hypotheses"][0]["forced"] and scored["best"]["ids"]
    assert client.post("/v1/override", json={"text": "the cat", "step": 99}).status_code == 422
    assert client.post("/v1/score", json={"text": "\u200b", "target": "x"}).json()["detail"][0]["msg"].startswith("Empty input")


def test_models_health_metrics_and_the_openapi_schema(client: TestClient) -> None:
    assert [m["name"] for m in client.get("/v1/models").json()] == ["en-fr", "de-en", "en-fr-noattn"]
    assert client.get("/healthz").json()["status"] == "ok"
    client.post("/v1/translate", json={"text": "the cat"})
    metrics = client.get("/metrics").text
    assert 's2s_requests_total{route="/v1/translate",status="200"} 1.0' in metrics
    assert "process_resident_memory_bytes" in metrics
    spec = client.get("/v1/openapi.json").json()
    fields = spec["components"]["schemas"]["TranslateRequest"]["properties"]
    assert fields["beam_size"]["default"] == 5 and fields["alpha"]["default"] == 0.6  # from DecodeSettings
    assert {"/v1/translate", "/v1/redecode", "/translate", "/languages"} <= set(spec["paths"])


def test_serve_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "s2s", "serve", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "S2S_AUTH": "prog:pw"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.5)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/translate", json={"text": "Where is the station?"},
                            auth=("prog", "pw"), timeout=60)
        assert answer.status_code == 200 and answer.json()["text"]
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


CORES = os.cpu_count() or 1


@pytest.mark.parametrize("options, threads", [([], CORES), (["--workers", "2"], max(1, CORES // 2)),
                                              (["--workers", "2", "--threads", "3"], 3)])
def test_serve_gives_each_worker_its_share_of_the_cores(monkeypatch: pytest.MonkeyPatch, options: list[str],
                                                        threads: int) -> None:
    """Workers that each took every core would take turns on them: each gets the cores divided
    among the workers (torch reads OMP_NUM_THREADS in every worker uvicorn starts)."""
    import torch
    import uvicorn

    from s2s.cli import main

    started, set_threads = [], []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    monkeypatch.setattr(torch, "set_num_threads", set_threads.append)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # serve's SIGTERM handler: not in pytest
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    main(["serve", *options])
    assert os.environ["OMP_NUM_THREADS"] == str(threads) and set_threads == [threads]
    assert started[0]["workers"] == (2 if options else 1) and started[0]["host"] == "127.0.0.1"
    assert main(["serve", "--threads", "0"]) == 2 and len(started) == 1
