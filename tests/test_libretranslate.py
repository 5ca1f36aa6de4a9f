"""LibreTranslate's routes as the clients that exist call them: each test sends the request its
client's source code sends (libretranslatepy runs for real against a live server) and reads the
answer the way that client reads it. Errors come as ``{"error"}`` with LibreTranslate's codes."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from libretranslatepy import LibreTranslateAPI

from s2s.admission import Busy
from s2s.libretranslate import detect_languages, html_texts
from s2s.rest import create_app
from s2s.service import Service
from scripts.local_server import free_port

KEY = "a-key-long-enough-to-be-safe"


@contextlib.contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread, for clients that need a URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_libretranslatepy_translates_detects_and_lists_languages_with_its_api_key(service: Service) -> None:
    app = create_app(service, logins=[("teacher", "secret")], api_keys=[KEY])
    with live_server(app) as url:
        client = LibreTranslateAPI(url, api_key=KEY)  # form-encoded posts, api_key in the body
        assert isinstance(client.translate("the big cat", "en", "fr"), str)
        detected = client.detect("Where is the station? I have lost my way.")
        assert detected[0]["language"] == "en" and 0 <= detected[0]["confidence"] <= 100
        assert {"code": "en", "name": "English", "targets": ["fr"]} in client.languages()
        with pytest.raises(Exception, match="403"):
            LibreTranslateAPI(url, api_key="a-wrong-key-of-enough-length").translate("the cat", "en", "fr")


def test_mastodon_sends_html_with_source_auto_and_reads_each_detected_language(client: TestClient) -> None:
    # lib/translation_service/libre_translate.rb: JSON {q: [...], source: 'auto', target, format: 'html', api_key}
    body = {"q": ["<p>the big cat</p>", "<p>red <b>bird</b> &amp; dog</p>"], "source": "auto", "target": "fr",
            "format": "html", "api_key": ""}
    answer = client.post("/translate", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert len(data["translatedText"]) == 2
    assert data["translatedText"][0].startswith("<p>") and data["translatedText"][0].endswith("</p>")
    assert "<b>" in data["translatedText"][1] and "</b>" in data["translatedText"][1]
    assert [item["language"] for item in data["detectedLanguage"]] == ["en", "en"]  # only English translates into fr


def test_the_translate_web_pages_extension_reads_detected_language_of_every_reply(client: TestClient) -> None:
    for body in ({"q": "the small dog", "source": "auto", "target": "fr", "format": "html"},
                 {"q": "the small dog", "source": "en", "target": "fr", "format": "text"}):
        data = client.post("/translate", json=body).json()
        if body["source"] == "auto":
            assert data["detectedLanguage"]["language"] == "en"
            assert 0 <= data["detectedLanguage"]["confidence"] <= 100
        assert isinstance(data["translatedText"], str)


def test_discourse_and_nextcloud_detect_then_translate(client: TestClient) -> None:
    detected = client.post("/detect", json={"q": "Wo ist der Bahnhof? Ich habe mich verlaufen.", "api_key": ""})
    assert detected.status_code == 200 and detected.json()[0]["language"] == "de"
    language = detected.json()[0]["language"]
    answer = client.post("/translate", json={"q": "the cat", "source": language, "target": "en", "format": "text"})
    assert answer.status_code == 200 and isinstance(answer.json()["translatedText"], str)
    multipart = client.post("/detect", files={"q": (None, "Où est la gare ? Je me suis perdu.")})
    assert multipart.status_code == 200 and multipart.json()[0]["language"] == "fr"


def test_libretranslate_ts_asks_for_alternatives(client: TestClient) -> None:
    data = client.post("/translate", json={"q": "the cat", "source": "en", "target": "fr", "format": "text",
                                           "alternatives": 3}).json()
    assert isinstance(data["alternatives"], list) and all(isinstance(text, str) for text in data["alternatives"])
    many = client.post("/translate", json={"q": ["the cat", "red bird"], "source": "en", "target": "fr",
                                           "alternatives": 2}).json()
    assert len(many["translatedText"]) == 2 and len(many["alternatives"]) == 2


def test_text_already_in_the_target_language_comes_back_unchanged(client: TestClient) -> None:
    data = client.post("/translate", json={"q": "Bonjour, je suis perdu dans la ville.", "source": "auto",
                                           "target": "fr"}).json()
    assert data == {"translatedText": "Bonjour, je suis perdu dans la ville.",
                    "detectedLanguage": {"language": "fr", "confidence": data["detectedLanguage"]["confidence"]}}


@pytest.mark.parametrize("body, status, message", [
    ({"q": "the cat", "source": "en", "target": "ja"}, 400, "not supported"),
    ({"source": "en", "target": "fr"}, 400, "missing q"),
    ({"q": "the cat", "source": "en"}, 400, "missing target"),
    ({"q": "x", "source": "en", "target": "fr", "format": "pdf"}, 400, "format"),
    ({"q": "x", "source": "en", "target": "fr", "alternatives": 99}, 400, "alternatives"),
    ({"q": ["x"] * 129, "source": "en", "target": "fr"}, 400, "at most 128"),
])
def test_every_error_is_an_error_object_with_libretranslates_status(client: TestClient, body: dict, status: int,
                                                                    message: str) -> None:
    answer = client.post("/translate", json=body)
    assert answer.status_code == status and message in answer.json()["error"], answer.text


def test_whitespace_and_invisible_text_are_answered_alike(client: TestClient) -> None:
    for q in ("   ", "\u200b"):
        answer = client.post("/translate", json={"q": q, "source": "en", "target": "fr"})
        assert answer.status_code == 200 and answer.json()["translatedText"] == q


def test_deeply_nested_json_is_a_bad_request_not_a_server_error(client: TestClient) -> None:
    nested = '{"q": ' + "[" * 5000 + "]" * 5000 + ', "source": "en", "target": "fr"}'
    for path in ("/translate", "/v1/translate"):
        answer = client.post(path, content=nested, headers={"content-type": "application/json"})
        assert 400 <= answer.status_code < 500, (path, answer.status_code)


def test_a_busy_server_says_slowdown_with_429(service: Service, client: TestClient) -> None:
    def busy(*args: object, **kwargs: object) -> None:
        raise Busy("decode")

    service.translate = busy  # type: ignore[method-assign]
    answer = client.post("/translate", json={"q": "the cat", "source": "en", "target": "fr"})
    assert answer.status_code == 429 and answer.json()["error"].startswith("Slowdown")
    assert int(answer.headers["retry-after"]) > 0


def test_wrong_keys_are_throttled_like_wrong_passwords(service: Service) -> None:
    client = TestClient(create_app(service, api_keys=[KEY]))
    statuses = [client.post("/translate", json={"q": "the cat", "source": "en", "target": "fr",
                                                 "api_key": f"guess-number-{n:04d}-long"}).status_code
                for n in range(11)]
    assert statuses[:10] == [403] * 10 and statuses[10] == 429
    # the right key is refused too until the window passes: no door lets guesses through faster
    assert client.post("/translate", json={"q": "the cat", "source": "en", "target": "fr", "api_key": KEY}
                       ).status_code == 429


def test_html_keeps_tags_attributes_comments_and_code() -> None:
    document = ('<div class="a b" data-x=\'1\'><!-- note --><p>red dog &lt;3</p><br/>'
                '<code>the cat</code><script>var x = "<b>";</script> blue </div>')
    passages, with_translations = html_texts(document)
    assert passages == ["red dog <3", "blue"]
    translated = with_translations([text.upper() for text in passages])
    assert translated == ('<div class="a b" data-x=\'1\'><!-- note --><p>RED DOG &lt;3</p><br/>'
                          '<code>the cat</code><script>var x = "<b>";</script> BLUE </div>')


def test_detection_tells_the_four_languages_apart() -> None:
    sentences = {"en": "The weather is nice today and we are going to the beach.",
                 "fr": "Il fait beau aujourd'hui et nous allons à la plage.",
                 "es": "Hoy hace buen tiempo y vamos a la playa.",
                 "de": "Heute ist das Wetter schön und wir gehen an den Strand."}
    for language, sentence in sentences.items():
        assert detect_languages(sentence, ["de", "en", "es", "fr"])[0][0] == language


def test_frontend_settings_as_libretranslates_web_clients_read_them(client: TestClient) -> None:
    settings = client.get("/frontend/settings").json()
    assert settings["charLimit"] > 0 and settings["language"]["source"]["code"] == "auto"
    assert json.loads(json.dumps(settings)) == settings
