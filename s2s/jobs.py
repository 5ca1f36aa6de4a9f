"""Training jobs started from the app: one at a time, each in its own process, surviving the page.

A job lives in ``<checkpoints>/.jobs/<name>/`` (the dot keeps it out of the model picker):
- ``job.json``: what to train (the ``python -m s2s train`` arguments) and its budget;
- ``data/``: the training and dev data (a generated toy task, or the checked upload);
- ``model/``: the training output (``s2s.train``), resumable;
- ``run.log``: the process's output; ``launch.json``: the process started (pid, time), written by
  the app; ``status.json``: how that process ended (finished, stopped or failed), written by it.

The process is ``python -m s2s.jobs JOB_FOLDER``: it runs the same ``train`` command a person
would type, then publishes the best model as ``<checkpoints>/<name>`` by an atomic rename, so the
picker never lists a half-written folder. Stop sends SIGTERM, which training honours at the
next step (saving its state); a stopped job resumes with ``--resume``. A process that dies without
writing its status is reported as crashed, with the end of its log.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from .card import update_metrics
from .checkpoint import (CARD_FILE, CONFIG_FILE, METRICS_FILE, TOKENIZER_FILE, WEIGHTS_FILE, read_metrics,
                         write_json)
from .config import ModelConfig, TrainConfig
from .train import LOG_FILE, PROBE_FILE
from .toy import TASKS, write_task
from .uploads import read_upload

JOBS_FOLDER = ".jobs"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PUBLISHED_FILES = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, METRICS_FILE, CARD_FILE, LOG_FILE, PROBE_FILE)
TOY_DEV_PAIRS = 300  # fewer than toy-data's 500: the tab validates every 25 steps
MAX_DEV_PAIRS = 1000
MAX_BUDGET_SECONDS = 3600  # the tab offers 1 to 60 minutes
KEPT_JOBS = 10  # job folders kept for resuming; older ones are removed (their published models stay)
MAX_TAB_MODELS = 20  # models trained in the tab that a checkpoints folder keeps; a 21st needs one removed
TAB_ORIGIN = "train-tab"  # metrics.json's "origin" of a model trained in the tab
RUNNING, FINISHED, STOPPED, FAILED, CRASHED = "running", "finished", "stopped", "failed", "crashed"


def check_name(name: str) -> str:
    """A model name that is a plain folder name: letters, digits, ``_ . -``; no ``/`` and no ``..``."""
    name = (name or "").strip()
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ValueError(f"model name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit (no '/' and no '..')")
    return name


def suggested_configs(pair_count: int, toy: bool) -> tuple[ModelConfig, TrainConfig]:
    """Sizes that fit the data: a toy task gets a tiny model with a near-character vocabulary and
    frequent validations (to watch attention form); uploads grow with their size."""
    threads = max(1, (os.cpu_count() or 2) - 1)  # leave a core to the explorer's translations
    if toy:
        return (ModelConfig(embedding_dim=64, encoder_hidden=64, decoder_hidden=128, dropout=0.1),
                TrainConfig(vocab_size=400, lr=3e-3, warmup_steps=100, valid_every=25, log_every=10,
                            threads=threads, early_stopping_patience=12))
    # Validations often enough that a budget of minutes gives the animation frames to show.
    if pair_count < 20_000:
        return (ModelConfig(embedding_dim=128, encoder_hidden=128, decoder_hidden=256),
                TrainConfig(vocab_size=2000, valid_every=50, log_every=10, threads=threads))
    return ModelConfig(), TrainConfig(valid_every=250, log_every=20, threads=threads)


def _flags(config: Any, skip: Sequence[str] = ()) -> list[str]:
    """Command-line options for the fields of ``config`` that differ from the defaults, as
    ``--name=value`` so that a value starting with "-" (a probe "-5 degrees") stays a value."""
    defaults = type(config)()
    flags = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name in skip or value == getattr(defaults, field.name):
            continue
        flag = "--" + field.name.replace("_", "-")
        flags.append((flag if value else "--no-" + flag[2:]) if isinstance(value, bool) else f"{flag}={value}")
    return flags


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running job process: its command line names this module, or it is a
    child of this process that has not yet replaced its command line (just started)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state, parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
    except OSError:
        return False
    return state != "Z" and (b"s2s.jobs" in cmdline or int(parent) == os.getpid())


class Job:
    """One job folder; every figure it reports is read from disk, so any process can watch it."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name

    @property
    def model_folder(self) -> Path:
        return self.folder / "model"

    def spec(self) -> dict[str, Any]:
        return json.loads((self.folder / "job.json").read_text(encoding="utf-8"))

    def _read(self, file: str) -> dict[str, Any]:
        try:
            return json.loads((self.folder / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def status(self) -> dict[str, Any]:
        """``state`` and ``message`` of the last process: its own final word, else running while it
        lives, else crashed (it died without writing one)."""
        launch, final = self._read("launch.json"), self._read("status.json")
        if not launch:
            return {"state": FAILED, "message": "the job was never started"}
        if final.get("pid") == launch["pid"]:
            return final
        if _alive(launch["pid"]):
            return {"state": RUNNING, "message": "running", **launch}
        return {"state": CRASHED, "message": "the training process ended without saying why; the end of its log:\n"
                + "\n".join(self.log_tail(8))}

    def running(self) -> bool:
        return self.status()["state"] == RUNNING

    def size(self, file: str) -> int:
        """Bytes in ``model/<file>`` so far (0 before it exists): a cheap sign that it grew."""
        path = self.model_folder / file
        return path.stat().st_size if path.is_file() else 0

    def records(self, file: str) -> list[dict[str, Any]]:
        """The JSON lines of ``model/<file>`` (a line being written is skipped)."""
        path = self.model_folder / file
        if not path.is_file():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def validations(self) -> list[dict[str, Any]]:
        """The validation records of the training log so far (step, dev scores, elapsed)."""
        return [r for r in self.records(LOG_FILE) if r.get("event") == "validation"]

    def log_tail(self, lines: int = 20) -> list[str]:
        path = self.folder / "run.log"
        if not path.is_file():
            return []
        with open(path, "rb") as log:
            log.seek(max(0, path.stat().st_size - 20_000))
            return log.read().decode("utf-8", errors="replace").splitlines()[-lines:]

    def trained_seconds(self, records: Sequence[dict[str, Any]] | None = None) -> float:
        """Training time so far, over every run of the job (from ``records`` of its training log
        when the caller has read them already)."""
        records = self.records(LOG_FILE) if records is None else records
        return max((r["elapsed"] for r in records if "elapsed" in r), default=0.0)

    def stop(self) -> None:
        """Ask the process to stop: training saves its state at the next step, then publishes."""
        status = self.status()
        if status["state"] != RUNNING:
            raise ValueError(f"job {self.name!r} is not running ({status['state']})")
        os.kill(status["pid"], signal.SIGTERM)


class JobBoard:
    """The jobs of a checkpoints folder; at most one runs at a time."""

    def __init__(self, checkpoints: Path) -> None:
        self.checkpoints = Path(checkpoints)
        self.folder = self.checkpoints / JOBS_FOLDER
        self._processes: list[subprocess.Popen] = []  # reaped by poll(), so none lingers as a zombie
        self._lock = threading.Lock()  # two Start clicks at once: one job, one refusal

    def jobs(self) -> list[Job]:
        """Every job, the most recently started last."""
        if not self.folder.is_dir():
            return []
        folders = [p for p in self.folder.iterdir() if (p / "job.json").is_file()]
        return [Job(p) for p in sorted(folders, key=lambda p: (p / "job.json").stat().st_mtime)]

    def latest(self) -> Job | None:
        self._reap()
        jobs = self.jobs()
        running = [job for job in jobs if job.running()]
        return running[-1] if running else (jobs[-1] if jobs else None)

    def _reap(self) -> None:
        self._processes = [p for p in self._processes if p.poll() is None]

    def _refuse_if_busy(self) -> None:
        job = self.latest()
        if job and job.running():
            seconds, budget = job.trained_seconds(), job.spec()["budget_seconds"]
            raise ValueError(f"a training job is already running: {job.name!r}, {seconds:.0f} of {budget:.0f} "
                             "seconds trained; stop it first or wait for it to finish")

    def start(self, name: str, task: str = "", uploads: Sequence[Path] = (), dev_upload: Path | None = None,
              model: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
              overwrite: bool = False) -> Job:
        """Check everything, write the job's data and start its process. ``task`` is a toy task;
        otherwise ``uploads`` is one TSV or two line-aligned files (and ``dev_upload`` an optional
        dev TSV; without it a dev split is taken from the data). ``model`` and ``train`` are
        ``ModelConfig`` and ``TrainConfig`` fields set over the sizes that fit the data
        (``suggested_configs``); ``train["max_time"]`` (seconds) is the budget and must be given."""
        with self._lock:
            return self._start(name, task, uploads, dev_upload, model or {}, train or {}, overwrite)

    def _start(self, name: str, task: str, uploads: Sequence[Path], dev_upload: Path | None,
               model_values: dict[str, Any], train_values: dict[str, Any], overwrite: bool) -> Job:
        name = check_name(name)
        if bool(task) == bool(uploads):
            raise ValueError("choose a toy task or upload data (one TSV or two line-aligned files)")
        if task and task not in TASKS:
            raise ValueError(f"unknown toy task {task!r}; choose one of {', '.join(TASKS)}")
        pairs = [] if task else read_upload(list(uploads))
        model, train = suggested_configs(len(pairs), toy=bool(task))
        try:
            model = dataclasses.replace(model, **model_values).validate()
            train = dataclasses.replace(train, **train_values).validate()
        except TypeError as error:  # a field that does not exist
            raise ValueError(str(error)) from error
        if not 0 < train.max_time <= MAX_BUDGET_SECONDS:
            raise ValueError(f"the time budget must be more than 0 and at most {MAX_BUDGET_SECONDS // 60} minutes, "
                             f"got {train.max_time / 60:g}")
        self._refuse_if_busy()
        published, folder = self.checkpoints / name, self.folder / name
        trained_here = self.tab_models()
        if len(trained_here) >= MAX_TAB_MODELS and name not in trained_here:
            raise ValueError(f"this server keeps at most {MAX_TAB_MODELS} models trained in this tab and has "
                             f"{len(trained_here)} ({', '.join(trained_here[:5])}, ...): retrain one of them under its "
                             "name (tick overwrite), or ask the server's operator to remove some")
        if (published.exists() or folder.exists()) and not overwrite:
            raise ValueError(f"a model or job named {name!r} already exists; choose another name or tick overwrite")
        if published.exists() and not folder.exists():  # shipped, or trained on the command line
            raise ValueError(f"the model {name!r} was not trained in this tab, which never replaces such a model; "
                             "choose another name")
        dev_pairs = read_upload([dev_upload], min_pairs=1) if dev_upload else []
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if folder.exists():
                shutil.rmtree(folder)
            (folder / "data").mkdir(parents=True)
            data = self._write_data(folder / "data", task, pairs, dev_pairs, train.seed)
        except OSError as error:
            raise ValueError(f"cannot write the job into {self.folder}: {error.strerror or error}") from error
        probe = data.pop("probe")
        if not train.probe:
            train = dataclasses.replace(train, probe=probe)
        arguments = (["train", "--train", str(data["train"]), "--dev", str(data["dev"])]
                     + (["--dev-alignments", str(data["alignments"])] if "alignments" in data else [])
                     + ["--out", str(folder / "model"), "--no-progress"]
                     + _flags(model, skip=("vocab_size",)) + _flags(train, skip=("max_time",)))
        write_json(folder / "job.json", {"name": name, "task": task, "uploads": [Path(p).name for p in uploads],
                                         "arguments": arguments,
                                         "budget_seconds": train.max_time, "created": time.time()})
        self._forget_old_jobs()
        return self._launch(Job(folder), resume=False)

    def tab_models(self) -> list[str]:
        """The published models that were trained in the tab (their card's ``origin``), oldest first."""
        models = []
        for folder in sorted(self.checkpoints.iterdir() if self.checkpoints.is_dir() else [],
                             key=lambda path: path.stat().st_mtime):
            if folder.name.startswith(".") or not (folder / METRICS_FILE).is_file():
                continue
            try:
                if read_metrics(folder).get("origin") == TAB_ORIGIN:
                    models.append(folder.name)
            except ValueError:
                continue
        return models

    def _forget_old_jobs(self) -> None:
        """Keep the newest ``KEPT_JOBS`` job folders (data, training state, log), so a server left
        up for a term does not fill its disk; a removed job can no longer be resumed."""
        for job in self.jobs()[:-KEPT_JOBS]:
            if not job.running():
                shutil.rmtree(job.folder, ignore_errors=True)

    @staticmethod
    def _write_data(folder: Path, task: str, pairs: list[tuple[str, str]], dev_pairs: list[tuple[str, str]],
                    seed: int) -> dict[str, Any]:
        """train.tsv and dev.tsv (and the toy task's dev.align) in ``folder``, and a probe sentence."""
        if task:
            paths: dict[str, Any] = write_task(task, folder, dev_size=TOY_DEV_PAIRS, seed=seed)
            paths["probe"] = paths["dev"].read_text(encoding="utf-8").split("\t", 1)[0]
            return paths
        if not dev_pairs:
            order = list(range(len(pairs)))
            random.Random(seed).shuffle(order)
            size = min(MAX_DEV_PAIRS, max(1, len(pairs) // 20))
            dev_pairs = [pairs[i] for i in order[:size]]
            pairs = [pairs[i] for i in sorted(order[size:])]
        for file, rows in (("train.tsv", pairs), ("dev.tsv", dev_pairs)):
            (folder / file).write_text("".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
        return {"train": folder / "train.tsv", "dev": folder / "dev.tsv", "probe": dev_pairs[0][0]}

    def resume(self, name: str, minutes: float) -> Job:
        """Continue a job that is not running, for ``minutes`` more of training."""
        with self._lock:
            return self._resume(name, minutes)

    def _resume(self, name: str, minutes: float) -> Job:
        self._refuse_if_busy()
        job = Job(self.folder / check_name(name))
        if not (job.folder / "job.json").is_file():
            raise ValueError(f"no job named {name!r}")
        if not (job.model_folder / "train_state.pt").is_file():
            raise ValueError(f"job {name!r} saved no training state to resume (it stopped before its first step)")
        if not 0 < 60 * minutes <= MAX_BUDGET_SECONDS:
            raise ValueError(f"the time budget must be more than 0 and at most {MAX_BUDGET_SECONDS // 60} minutes, "
                             f"got {minutes:g}")
        spec = job.spec()
        spec["budget_seconds"] = round(job.trained_seconds() + 60 * minutes, 1)
        write_json(job.folder / "job.json", spec)
        return self._launch(job, resume=True)

    def _launch(self, job: Job, resume: bool) -> Job:
        command = [sys.executable, "-m", "s2s.jobs", str(job.folder)] + (["--resume"] if resume else [])
        with open(job.folder / "run.log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, cwd=Path(__file__).resolve().parents[1])
        self._processes.append(process)
        write_json(job.folder / "launch.json", {"pid": process.pid, "started": time.time(), "resume": resume})
        return job


def publish(job: Job, checkpoints: Path) -> bool:
    """Copy the job's best model to ``checkpoints/<name>`` (replacing an older one) by renaming a
    complete copy into place; False when training saved no model yet."""
    source = job.model_folder
    if not all((source / file).is_file() for file in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE)):
        return False
    target, staging, old = (checkpoints / job.name, checkpoints / f".{job.name}.publishing",
                            checkpoints / f".{job.name}.old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        staging.mkdir()
        for file in PUBLISHED_FILES:
            if (source / file).is_file():
                shutil.copy2(source / file, staging / file)
        if target.exists():
            target.rename(old)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return True


def _card_fields(spec: dict[str, Any]) -> dict[str, str | None]:
    """What the card says about a model trained in the app, beyond what training records."""
    if spec["task"]:
        data, attribution = f"the toy task `{spec['task']}` (s2s.toy)", "generated by s2s.toy: no licence applies"
    else:
        data = f"uploaded sentence pairs ({', '.join(spec['uploads'])})"
        attribution = "uploaded by the person who trained it; their terms apply"
    return {"title": spec["name"], "description": f"Trained in the app's Train tab on {data}.",
            "data_attribution": attribution, "toy_task": spec["task"] or None, "origin": TAB_ORIGIN}


def run(folder: Path, resume: bool) -> int:
    """The job process: train, publish, and record how it ended."""
    from .cli import main as cli_main

    def interrupt(signum: int, frame: Any) -> None:  # Stop before training installed its own handler
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    job = Job(folder)
    spec = job.spec()
    arguments = spec["arguments"] + ["--max-time", str(spec["budget_seconds"])]
    if resume:
        arguments.append("--resume")
    print("$ python -m s2s " + " ".join(shlex.quote(a) for a in arguments), flush=True)
    status: dict[str, Any] = {"pid": os.getpid(), "ended": None}
    try:
        code = cli_main(arguments)
        if (job.model_folder / METRICS_FILE).is_file():
            update_metrics(job.model_folder, _card_fields(spec))
        reason = read_metrics(job.model_folder).get("training", {}).get("stopped_because", "")
        published = publish(job, job.folder.parents[1])
        if code == 130:
            status.update(state=STOPPED, message="stopped before training began")
        elif code != 0:
            status.update(state=FAILED, message=f"training failed (exit code {code}); see the log")
        else:
            status.update(state=STOPPED if reason == "interrupted" else FINISHED,
                          message=f"stopped because: {reason}" + ("" if published else "; no model was saved"))
        status["published"] = published
    except Exception as error:  # a full disk, an unwritable folder: reported in the tab, not lost
        status.update(state=FAILED, message=f"{type(error).__name__}: {error}", published=False)
        print(f"error: {type(error).__name__}: {error}", flush=True)
    status["ended"] = time.time()
    try:
        write_json(job.folder / "status.json", status)
    except OSError:
        return 1
    return 0 if status["state"] in (FINISHED, STOPPED) else 1


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]), resume="--resume" in sys.argv[2:]))
