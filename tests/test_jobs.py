"""Training jobs through the app's Train tab functions: a toy task trained in a separate process to a
model the catalog lists; one job at a time; stop, resume, crashes, bad names and bad uploads."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from s2s import jobs
from s2s.admission import Gate
from s2s.catalog import ModelCatalog
from s2s.cli import build_parser
from s2s.config import TrainConfig
from s2s.jobs import CRASHED, FINISHED, RUNNING, STOPPED, Job, JobBoard, suggested_configs
from s2s.ui.train_tab import TOY, UPLOAD, build_train_tab

WAIT_SECONDS = 240


class Tab:
    """The Train tab built on its own over a scratch checkpoints folder, driven through its handlers."""

    def __init__(self, root: Path) -> None:
        self.catalog = ModelCatalog(root)
        with gr.Blocks():
            self.picker = gr.Dropdown(choices=[], label="Model")
            self.handlers = build_train_tab(self.catalog, [self.picker], Gate())
        self.status, self.progress, self.curves, self.animation, self.log, self.seen, self.timer = \
            self.handlers["outputs"][:7]
        self.signature: tuple = ()
        self.last: dict = {}

    def values(self, **changes: Any) -> dict:
        fields = self.handlers["fields"]
        values = {component: component.value for component in fields.values()}
        return values | {fields[name]: value for name, value in changes.items()}

    def _keep(self, updates: dict) -> dict:
        self.signature = updates.get(self.seen, self.signature)
        self.last = {**self.last, **{k: v for k, v in updates.items() if not isinstance(v, dict) or v}}
        return updates

    def start(self, **changes: Any) -> str:
        return self._keep(self.handlers["start"](self.values(**changes)))[self.status]

    def wait(self) -> dict:
        """Refresh as the timer would until the job is no longer running."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            updates = self._keep(self.handlers["refresh"](self.signature))
            if self.signature and self.signature[1] != RUNNING:
                return updates
            assert time.monotonic() < deadline, updates.get(self.log)
            time.sleep(1)


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_a_toy_task_trains_in_its_own_process_to_a_model_the_catalog_lists(tmp_path: Path) -> None:
    tab = Tab(tmp_path)
    assert tab.start(name="dates-20s", minutes=20 / 60, probe="the 4th of March 1998") == \
        "**Job `dates-20s` started.**\n\n**Job `dates-20s`: running.**"
    busy = tab.start(name="another")
    assert "already running: 'dates-20s'" in busy and "of 20 seconds trained" in busy
    final = tab.wait()
    assert "finished" in final[tab.status] and "model picker" in final[tab.status]
    assert "step " in final[tab.progress] and "trained of 0.333 minutes" in final[tab.progress]
    assert final[tab.progress].startswith("100%")  # done, even when it stopped before its budget
    curves = tab.last[tab.curves]
    assert {trace.name for trace in curves.data} >= {"training loss", "dev loss", "dev BLEU", "alignment accuracy"}
    losses = next(trace.y for trace in curves.data if trace.name == "training loss")
    assert len(losses) >= 3 and losses[-1] < losses[0]
    frames = tab.last[tab.animation].frames
    assert len(frames) >= 2 and frames[0].layout.title.text.startswith("step 25")
    assert frames[-1].data[0].z.shape[1] == 6  # the probe's words: the 4th of March 1998 </s>
    assert final[tab.picker].choices == [("dates-20s", "dates-20s")]
    assert tab.catalog.names() == ["dates-20s"]
    assert tab.catalog.summary("dates-20s")["toy_task"] == "dates"  # the explorer offers dates as examples
    result = tab.catalog.get("dates-20s").translate("the 4th of March 1998")
    assert result["text"]
    card = (tmp_path / "dates-20s" / "README.md").read_text()
    assert card.startswith("# dates-20s\n") and "toy task `dates`" in card
    assert "python -m s2s train" in card and "--max-time 20" in card and "alignment accuracy" in card
    metrics = json.loads((tmp_path / "dates-20s" / "metrics.json").read_text())
    assert metrics["training"]["stopped_because"] in ("max_time", "early_stopping")
    assert not (tmp_path / "dates-20s" / "train_state.pt").exists()  # the optimiser state stays with the job


def test_stop_keeps_the_best_model_and_resume_continues_the_job(tmp_path: Path) -> None:
    tab = Tab(tmp_path)
    tab.start(name="reverse", task="reverse", minutes=2)
    job = Job(tmp_path / jobs.JOBS_FOLDER / "reverse")
    wait_for(lambda: (job.model_folder / "train_state.pt").exists(), "the first validation")
    stopping = tab.handlers["stop"](tab.signature)
    assert "Stopping" in stopping[tab.status]
    tab.wait()
    assert job.status()["state"] == STOPPED and job.status()["published"]
    assert (tmp_path / "reverse" / "model.safetensors").exists()
    steps = json.loads((tmp_path / "reverse" / "metrics.json").read_text())["training"]["steps"]
    resumed = tab.handlers["resume"](tab.signature, 20 / 60)
    assert "resumed" in resumed[tab.status]
    tab.wait()
    assert job.status()["state"] == FINISHED
    training = json.loads((tmp_path / "reverse" / "metrics.json").read_text())["training"]
    assert training["runs"] == 2 and training["steps"] > steps


def test_a_killed_training_process_is_reported_as_crashed(tmp_path: Path) -> None:
    board = JobBoard(tmp_path)
    job = board.start("doomed", task="sort", train={"max_time": 60.0})
    pid = json.loads((job.folder / "launch.json").read_text())["pid"]
    wait_for(lambda: (job.folder / "run.log").stat().st_size > 0, "the process to start")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: job.status()["state"] != RUNNING, "the process to die")
    status = job.status()
    assert status["state"] == CRASHED and "ended without saying why" in status["message"]
    assert board.latest().name == "doomed" and "doomed" not in ModelCatalog(tmp_path).names()


@pytest.mark.parametrize("name", ["a/b", "..", "../escape", "", ".hidden", "x" * 65, "two words"])
def test_bad_model_names_are_refused(tmp_path: Path, name: str) -> None:
    tab = Tab(tmp_path)
    assert "is not allowed" in tab.start(name=name)
    assert not any(tmp_path.iterdir())


def test_an_existing_name_needs_overwrite_and_an_unwritable_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    tab = Tab(tmp_path)
    assert "already exists" in tab.start(name="mine")
    assert "never replaces such a model" in tab.start(name="mine", overwrite=True)  # e.g. a shipped model
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    assert "cannot write the job" in Tab(blocked).start(name="mine")


def test_a_bad_upload_gets_its_line_and_nothing_starts(tmp_path: Path) -> None:
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"hello {i}\tbonjour {i}\n" for i in range(150)) + "oops no tab\n")
    tab = Tab(tmp_path / "checkpoints")
    message = tab.start(name="mine", data=UPLOAD, uploads=[str(data)])
    assert message == "**Not started:** pairs.tsv, line 151: no tab; each line must be source<TAB>target"
    assert "choose a toy task or upload" in tab.start(name="mine", data=UPLOAD, uploads=None)
    assert not (tmp_path / "checkpoints" / jobs.JOBS_FOLDER).exists()
    assert tab.start(name="mine", data=TOY, minutes=0).startswith("**Not started:** the time budget")


def test_a_failed_publish_leaves_no_half_written_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / jobs.JOBS_FOLDER / "full" / "model"
    model.mkdir(parents=True)
    for file in jobs.PUBLISHED_FILES:
        (model / file).write_text("{}")

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", disk_full)
    with pytest.raises(OSError):
        jobs.publish(Job(model.parent), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [jobs.JOBS_FOLDER]


def test_the_job_command_keeps_every_setting_even_a_probe_that_starts_with_a_dash() -> None:
    model, train = suggested_configs(0, toy=True)
    train = dataclasses.replace(train, probe="-5 degrees, --help", fp16_weights=False)
    flags = jobs._flags(model, skip=("vocab_size",)) + jobs._flags(train)
    args = build_parser().parse_args(["train", "--train", "a.tsv", "--dev", "b.tsv", "--out", "m", *flags])
    assert getattr(args, "TrainConfig.probe") == "-5 degrees, --help"
    assert getattr(args, "TrainConfig.fp16_weights") is False
    assert getattr(args, "TrainConfig.valid_every") == train.valid_every != TrainConfig().valid_every
    assert getattr(args, "ModelConfig.embedding_dim") == model.embedding_dim


def test_only_the_newest_job_folders_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "KEPT_JOBS", 2)
    monkeypatch.setattr(JobBoard, "_launch", lambda self, job, resume: job)  # no training process
    board = JobBoard(tmp_path)
    for number in range(4):
        board.start(f"job{number}", task="sort", train={"max_time": 5.0})
        os.utime(tmp_path / jobs.JOBS_FOLDER / f"job{number}" / "job.json", (number, number))
    assert [job.name for job in board.jobs()] == ["job2", "job3"]


def test_uploads_get_sizes_that_fit_their_size_and_unknown_settings_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JobBoard, "_launch", lambda self, job, resume: job)  # no training process
    board = JobBoard(tmp_path / "checkpoints")
    flags = {}
    for count in (200, 25_000):
        data = tmp_path / f"pairs{count}.tsv"
        data.write_text("".join(f"hello {i}\tbonjour {i}\n" for i in range(count)))
        job = board.start(f"mine{count}", uploads=[data], train={"max_time": 60.0}, model={"rnn_type": "lstm"})
        flags[count] = {a.split("=")[0]: a.split("=", 1)[-1] for a in job.spec()["arguments"] if a.startswith("--")}
    assert flags[200]["--vocab-size"] == "2000" and flags[200]["--embedding-dim"] == "128"
    assert "--vocab-size" not in flags[25_000] and "--embedding-dim" not in flags[25_000]  # the shipped recipe
    assert flags[200]["--rnn-type"] == flags[25_000]["--rnn-type"] == "lstm"
    with pytest.raises(ValueError, match="hidden_size"):
        board.start("typo", task="sort", model={"hidden_size": 10}, train={"max_time": 60.0})


def test_the_tab_keeps_a_bounded_number_of_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server up for a term: models trained in the tab are counted by their card, and past the
    quota a new name is refused (retraining one of them in place still works)."""
    monkeypatch.setattr(jobs, "MAX_TAB_MODELS", 2)
    monkeypatch.setattr(JobBoard, "_launch", lambda self, job, resume: job)  # no training process
    for name, origin in (("first", jobs.TAB_ORIGIN), ("second", jobs.TAB_ORIGIN), ("shipped", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"origin": origin}))
    board = JobBoard(tmp_path)
    assert board.tab_models() == ["first", "second"]
    with pytest.raises(ValueError, match="at most 2 models trained in this tab"):
        board.start("third", task="sort", train={"max_time": 5.0})
    (tmp_path / jobs.JOBS_FOLDER / "first").mkdir(parents=True)  # its job folder: it was trained here
    board.start("first", task="sort", train={"max_time": 5.0}, overwrite=True)
