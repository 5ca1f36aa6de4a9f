"""The server under programs and busy classrooms: nothing blocks the event loop, every request's
cost is known and bounded before it runs, nobody fails for somebody else, waits end, bodies are
limited as they stream in, nothing stale is served, and a server up for a term stays bounded."""

from __future__ import annotations

import base64
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from s2s import api_guard
from s2s.admission import Busy, Gate
from s2s.batching import RequestBatcher
from s2s.catalog import ModelCatalog
from s2s.checkpoint import save_model
from s2s.rest import create_app
from s2s.service import MAX_TEXTS, RequestError, Service
from s2s.translator import STRATEGIES, Translator, make_settings
from s2s.uploads import UploadGuard, sweep_uploads
from tests.conftest import random_model
from tests.test_libretranslate import live_server


# ---------------------------------------------------------------------------- the event loop


def test_healthz_answers_at_once_while_libretranslate_calls_decode(service: Service) -> None:
    """Four long LibreTranslate calls through a real server: /healthz still answers in
    milliseconds (the decoding runs off the event loop)."""
    original = service.translate

    def slow_translate(*args: object, **kwargs: object) -> object:
        time.sleep(1.5)  # a long decode: the thread is blocked, as torch's would be
        return original(*args, **kwargs)

    service.translate = slow_translate  # type: ignore[method-assign]
    with live_server(create_app(service)) as url, httpx.Client(timeout=30) as http:
        calls = [threading.Thread(target=http.post, args=(f"{url}/translate",),
                                  kwargs={"json": {"q": ["the cat"] * 4, "source": "en", "target": "fr"}})
                 for _ in range(4)]
        for call in calls:
            call.start()
        time.sleep(0.3)  # the calls are decoding now
        waits = []
        for _ in range(5):
            started = time.perf_counter()
            assert http.get(f"{url}/healthz").status_code == 200
            waits.append(time.perf_counter() - started)
        for call in calls:
            call.join()
    assert max(waits) < 0.5, waits


# ---------------------------------------------------------------------------- costs known before


def test_too_many_texts_are_refused_by_name_at_every_door(service: Service, client: TestClient) -> None:
    texts = ["a"] * (MAX_TEXTS + 1)
    with pytest.raises(RequestError, match=f"at most {MAX_TEXTS}"):
        service.translate("en-fr", texts, make_settings())
    answer = client.post("/v1/translate", json={"text": texts})
    assert answer.status_code == 422 and "text" in answer.text
    started = time.perf_counter()
    answer = client.post("/v1/translate", json={"text": ["a"] * 50_000})
    assert answer.status_code == 422 and time.perf_counter() - started < 2


def test_a_request_over_the_work_or_memory_budget_is_refused_before_it_runs(service: Service,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = []
    monkeypatch.setattr(service.batcher, "translate_all", lambda *args: decoded.append(args) or [])
    monkeypatch.setattr("s2s.service.MAX_REQUEST_WORK", 1000)
    text = " ".join(["the big red cat runs."] * 20)
    with pytest.raises(RequestError, match="at most 1,000 are taken per request"):
        service.translate("en-fr", [text], make_settings(beam_size=16))
    monkeypatch.setattr("s2s.service.MAX_REQUEST_WORK", 10**9)
    service.memory_budget = 2**20
    with pytest.raises(RequestError, match="over this server's budget of 1 MB per request"):
        service.translate("en-fr", [text], make_settings(strategy="sample", nbest=64))
    assert decoded == []  # nothing reached the decoder


def test_the_gate_charges_memory_and_refuses_what_never_fits() -> None:
    gate = Gate(max_wait=0.1, memory_capacity=100)
    with gate.admit("decode", 60):
        with pytest.raises(Busy):  # waits for the other's memory, then says busy
            with gate.admit("decode", 60):
                pass
        with gate.admit("decode", 30):  # a small one still gets in
            assert gate.held == 90
    started = time.monotonic()
    with pytest.raises(Busy, match="more than this server gives all requests together"):
        with gate.admit("decode", 101):
            pass
    assert time.monotonic() - started < 0.05 and gate.held == 0


def test_saliency_work_is_bounded_before_it_starts(service: Service) -> None:
    long = " ".join(["the big red cat runs"] * 8)
    with pytest.raises(RequestError, match="at most 150,000 per request"):
        service.saliency("en-fr", long, ids=[5] * 200, steps=256)


# ---------------------------------------------------------------------------- the batcher


class RecordingTranslator:
    """Stands for a Translator in the batcher: records each batch, sleeps, fails on "bad"."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.seconds = seconds

    def translate_batch(self, texts: list[str], settings: object, details: bool = True) -> list[dict]:
        self.batches.append(list(texts))
        time.sleep(self.seconds)
        if "bad" in texts:
            raise ValueError("a sentence over the memory budget: 'bad'")
        return [{"text": text} for text in texts]


def test_a_large_submission_shares_the_batcher_with_a_late_small_one() -> None:
    fake = RecordingTranslator(seconds=0.02)
    batcher = RequestBatcher(max_batch=4, round_work=100)
    settings = make_settings()
    big = threading.Thread(target=batcher.translate_all, args=([(fake, f"big {n}", settings) for n in range(40)],
                                                               [30] * 40))  # each text's work: 4 make a round
    big.start()
    time.sleep(0.05)
    assert batcher.translate_all([(fake, "small", settings)]) == [{"text": "small"}]
    big.join()
    order = [text for batch in fake.batches for text in batch]
    assert order.index("small") < order.index("big 20")  # not after the whole of the big one
    assert max(len(batch) for batch in fake.batches) <= 5  # about round_work each


def test_one_callers_error_reaches_only_that_caller() -> None:
    fake = RecordingTranslator(seconds=0.05)
    batcher = RequestBatcher(max_batch=8)
    settings = make_settings()
    results: dict[str, object] = {}

    def ask(text: str) -> None:
        try:
            results[text] = batcher.translate_all([(fake, text, settings)], [5_000])[0]  # batched, not fast
        except ValueError as error:
            results[text] = error

    callers = [threading.Thread(target=ask, args=(text,)) for text in ("first", "bad", "good", "fine")]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert isinstance(results["bad"], ValueError)
    assert all(results[text] == {"text": text} for text in ("first", "good", "fine"))


def test_a_small_request_skips_the_queue_while_a_lane_is_free() -> None:
    fake = RecordingTranslator(seconds=1.0)
    batcher = RequestBatcher(max_batch=4, round_work=100)
    big = threading.Thread(target=batcher.translate_all, args=([(fake, "big", make_settings())], [100_000]))
    big.start()
    time.sleep(0.1)
    fake.seconds = 0.0
    started = time.monotonic()
    assert batcher.translate_all([(fake, "small", make_settings())], [100]) == [{"text": "small"}]
    assert time.monotonic() - started < 0.5  # not after the big one's second
    big.join()


def test_a_caller_waits_at_most_the_timeout_and_its_unstarted_texts_are_dropped() -> None:
    fake = RecordingTranslator(seconds=0.5)
    batcher = RequestBatcher(max_batch=1 + 1, round_work=1, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(Busy, match="did not finish within"):
        batcher.translate_all([(fake, f"text {n}", make_settings()) for n in range(10)], [10_000] * 10)
    assert time.monotonic() - started < 0.45
    time.sleep(0.7)
    assert len([text for batch in fake.batches for text in batch]) <= 2  # the rest never ran


# ---------------------------------------------------------------------------- one door after another


def test_a_forced_prefix_with_no_repeat_ngram_is_answered_at_every_door(service: Service, client: TestClient) -> None:
    body = {"model": "en-fr", "text": "the cat sleeps", "prefix": "red red", "no_repeat_ngram": 1}
    for strategy in STRATEGIES:
        answer = client.post("/v1/translate", json=body | {"strategy": strategy})
        assert answer.status_code == 200, answer.text
        assert answer.json()["sentences"][0]["hypotheses"][0]["text"].startswith("red red")
    best = service.alternatives("en-fr", "the cat sleeps", make_settings(strategy="greedy"))
    repeated = service.redecode("en-fr", "the cat sleeps", make_settings(no_repeat_ngram=1),
                                replacement=best["ids"][0], position=1)  # a picked alternative repeating the first
    assert repeated["hypotheses"][0]["ids"][:2] == [best["ids"][0]] * 2


def test_redecode_of_given_ids_takes_the_runner_up_when_no_word_is_typed(service: Service,
                                                                        client: TestClient) -> None:
    best = service.alternatives("en-fr", "the cat sleeps", make_settings())
    answer = client.post("/v1/redecode", json={"text": "the cat sleeps", "ids": best["ids"], "position": 0})
    assert answer.status_code == 200, answer.text
    assert answer.json()["hypotheses"][0]["ids"][0] == best["alternatives"][0][1]["id"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_smallest_length_settings_still_give_one_piece(translator: Translator, strategy: str) -> None:
    result = translator.translate("the big cat runs", strategy=strategy, max_length_ratio=0.1, max_length_extra=0)
    assert all(len(h["ids"]) >= 2 and h["text"] for s in result["sentences"] for h in s["hypotheses"])


# ---------------------------------------------------------------------------- bodies and logins


def test_a_chunked_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    def chunks():  # no Content-Length: Transfer-Encoding: chunked
        for _ in range(3):
            yield b"[" + b'"a",' * 200_000

    for path, shape in (("/v1/translate", "detail"), ("/translate", "error")):
        answer = client.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert answer.status_code == 413 and shape in answer.json(), (path, answer.text[:200])


def _raw_request(url: str, request: bytes, wait: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(request)
        return connection.recv(4096)


def test_half_sent_bodies_time_out_and_ambiguous_lengths_are_refused(service: Service,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_guard, "BODY_READ_TIMEOUT", 0.5)
    with live_server(create_app(service)) as url:
        started = time.monotonic()
        answer = _raw_request(url, b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 100\r\n\r\n{\"text\": ")
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 3
        both = _raw_request(url, b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert both.startswith(b"HTTP/1.1 400")


def test_http_basic_guesses_are_throttled_like_the_pages_login(service: Service) -> None:
    client = TestClient(create_app(service, logins=[("teacher", "secret")]))
    statuses = []
    for n in range(11):
        token = base64.b64encode(f"teacher:guess{n}".encode()).decode()
        statuses.append(client.get("/v1/models", headers={"authorization": f"Basic {token}"}).status_code)
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_swagger_ui_is_served_from_the_package(client: TestClient) -> None:
    page = client.get("/v1/docs")
    assert page.status_code == 200 and "/v1/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/v1/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_the_schema_states_the_ranges_and_choices_the_server_enforces(client: TestClient) -> None:
    fields = client.get("/v1/openapi.json").json()["components"]["schemas"]["TranslateRequest"]["properties"]
    assert fields["beam_size"]["minimum"] == 1 and fields["beam_size"]["maximum"] == 64
    assert fields["strategy"]["enum"] == list(STRATEGIES)
    assert client.post("/v1/translate", json={"text": "x", "top_p": 0}).status_code == 422


def test_security_headers_come_with_every_api_answer(client: TestClient) -> None:
    headers = client.get("/healthz").headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "SAMEORIGIN"


# ---------------------------------------------------------------------------- nothing stale, nothing grows


def test_saliency_after_a_retrain_in_place_is_of_the_new_weights(service: Service, tokenizer) -> None:
    ids = service.alternatives("en-fr", "the big cat", make_settings())["ids"]
    first = service.saliency("en-fr", "the big cat", ids=ids, method="input_x_gradient")
    time.sleep(0.01)  # a new modification time
    save_model(service.catalog.root / "en-fr", random_model(tokenizer.vocab_size, seed=7, scale=3.0), tokenizer,
               fp16=False)
    second = service.saliency("en-fr", "the big cat", ids=ids, method="input_x_gradient")
    assert second["signed"] != first["signed"]


def test_the_catalog_keeps_the_most_recent_models_and_loads_outside_its_lock(
        translator: Translator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c", "slow"):
        save_model(tmp_path / name, translator.model, translator.tokenizer)
    catalog = ModelCatalog(tmp_path, max_loaded=2)
    for name in ("a", "b", "c", "b"):
        catalog.get(name)
    assert catalog.loaded() == ["c", "b"]
    loading, release = threading.Event(), threading.Event()
    load = Translator.load

    def slow_load(folder: Path, *args: object, **kwargs: object) -> Translator:
        if Path(folder).name == "slow":
            loading.set()
            release.wait(10)
        return load(folder, *args, **kwargs)

    monkeypatch.setattr(Translator, "load", staticmethod(slow_load))
    cold = threading.Thread(target=catalog.get, args=("slow",))
    cold.start()
    try:
        assert loading.wait(10)
        started = time.monotonic()
        catalog.get("b")  # loaded already: not held up by the cold load
        assert time.monotonic() - started < 1
    finally:
        release.set()
        cold.join()
    assert catalog.loaded() == ["b", "slow"]


def test_uploads_expire_and_a_full_upload_folder_refuses_more(tmp_path: Path) -> None:
    old, new, own = tmp_path / "abc" / "old.tsv", tmp_path / "def" / "new.tsv", tmp_path / "s2s-exports-1" / "x.json"
    for path in (old, new, own):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x" * 1000)
    past = time.time() - 3600
    import os
    os.utime(old, (past, past))
    os.utime(own, (past, past))
    assert sweep_uploads(tmp_path, max_age=60, quota=10_000) == 1000
    assert not old.exists() and not old.parent.exists() and new.exists() and own.exists()
    assert sweep_uploads(tmp_path, max_age=60, quota=500) == 0 and not new.exists()  # over the quota: oldest first

    async def app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"stored"})

    guard = UploadGuard(app, tmp_path, quota=1500)
    client = TestClient(guard)
    assert client.post("/gradio_api/upload", content=b"x" * 1000).status_code == 200
    assert client.post("/gradio_api/upload", content=b"x" * 1000).status_code == 200
    assert client.post("/gradio_api/upload", content=b"x" * 10).status_code == 507


def test_a_known_path_with_another_method_is_405_even_with_the_page_mounted_under_it(service: Service) -> None:
    from fastapi import FastAPI

    app = create_app(service)
    page = FastAPI()

    @page.get("/{anything:path}")
    async def everything(anything: str) -> dict:  # stands for the page mounted at ""
        return {"page": anything}

    app.mount("", page)
    client = TestClient(app)
    for method, path, allow in (("GET", "/v1/translate", "POST"), ("GET", "/translate", "POST"),
                                ("POST", "/healthz", "GET")):
        answer = client.request(method, path)
        assert answer.status_code == 405 and answer.headers["allow"] == allow, (method, path)
    assert client.get("/v1/no-such-route").status_code == 404
    assert client.get("/anything-else").json() == {"page": "anything-else"}


def test_a_model_that_failed_to_load_is_listed_with_its_error(service: Service, client: TestClient) -> None:
    (service.catalog.root / "de-en" / "model.safetensors").write_bytes(b"not weights")
    assert client.post("/v1/translate", json={"model": "de-en", "text": "the cat"}).status_code == 404
    listed = {model["name"]: model for model in client.get("/v1/models").json()}
    assert "corrupt weights" in listed["de-en"]["error"] and "error" not in listed["en-fr"]
