"""Invisible and odd inputs on every route: a translation for every sentence, or the message that
empty text gets; never a crash (Python API, CLI, the named endpoints, the page's functions)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import gradio as gr
import pytest

from s2s.catalog import ModelCatalog
from s2s.checkpoint import save_model
from s2s.service import Service
from s2s.cli import main
from s2s.translator import EMPTY_MESSAGE, Translator
from s2s.ui import explorer
from s2s.ui.api import WhatIf
from s2s.ui.linked_view import server_functions

INVISIBLE = ["\u200b", "\u200d", "\ufeff", "\u200b\u200d\ufeff \u2060\u200e", " \u200b\n\u200b "]
ODD = ["\u0301", "...", "?!", "</s>", "\u200b. \u200b", "the cat. \u200b", "\u0301\u0301 dog"]


def service_of(translator: Translator, folder: Path) -> Service:
    """A service over one model, "m", saved from ``translator``."""
    save_model(folder / "m", translator.model, translator.tokenizer)
    return Service(ModelCatalog(folder, default="m"))


def assert_answered(result: dict) -> None:
    """A result either translates every sentence it keeps or has a message and no sentences."""
    if result["message"]:
        assert result["sentences"] == [] and result["text"] == ""
    else:
        assert result["sentences"] and all(s["hypotheses"] for s in result["sentences"])


@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_text_is_answered_like_empty_text(translator: Translator, text: str) -> None:
    result = translator.translate(text)
    assert result["message"] == EMPTY_MESSAGE and result["sentences"] == []


@pytest.mark.parametrize("text", INVISIBLE + ODD)
@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_every_odd_input_is_translated_or_gets_a_message(translator: Translator, text: str, strategy: str) -> None:
    result = translator.translate(text, strategy=strategy, beam_size=3, seed=1)
    assert_answered(result)
    json.dumps(result)


@pytest.mark.parametrize("text", INVISIBLE + ODD)
def test_the_what_if_endpoints_answer_or_refuse_with_a_message(translator: Translator, tmp_path: Path, text: str) -> None:
    what_if = WhatIf(service_of(translator, tmp_path))
    calls = [lambda: what_if.alternatives("m", text), lambda: what_if.redecode("m", text, 0, "cat"),
             lambda: what_if.override("m", text, 0), lambda: what_if.saliency("m", text, "input_x_gradient"),
             lambda: what_if.score("m", text, "the dog")]
    for call in calls:
        try:
            answer = call()
        except gr.Error as error:
            assert str(error.message).strip()
        else:
            assert isinstance(answer, dict) and answer


@pytest.mark.parametrize("text", INVISIBLE + ODD)
def test_the_page_answers_odd_input(translator: Translator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    text: str) -> None:
    service = service_of(translator, tmp_path)
    monkeypatch.setattr(explorer, "service", service)
    page = explorer.build_app().page
    outputs = page.handlers["explore"](page.explore_values("m", text, classic=True))
    assert outputs
    if text in INVISIBLE:
        assert any(isinstance(v, str) and "Empty input" in v for v in outputs.values())
    request = {"model": "m", "source": text, "ids": [5, 6, 2], "position": 0, "replacement": "cat",
               "settings": {"strategy": "greedy"}, "target": "the dog", "method": "input_x_gradient"}
    for server_function in server_functions(service):
        answer = json.loads(server_function(request))
        assert ("error" in answer and answer["error"]) or ("sentence" in answer or "saliency" in answer)
        assert "Something went wrong" not in answer.get("error", "")  # a message, never a bug


def test_the_command_line_translates_odd_lines_and_warns_on_invisible_ones(
        translator: Translator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    save_model(tmp_path / "m", translator.model, translator.tokenizer)
    lines = INVISIBLE[:3] + ODD
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(line.replace("\n", " ") + "\n" for line in lines)))
    assert main(["translate", "--model", str(tmp_path / "m"), "--format", "json", "--beam-size", "2"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(results) == len(lines)
    for result in results:
        assert_answered(result)
    assert all(r["message"] == EMPTY_MESSAGE for r in results[:3])
