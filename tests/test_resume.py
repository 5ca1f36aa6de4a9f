"""Exact resume from any stop: a time limit, SIGTERM or SIGKILL at any step, then ``--resume``,
ends with the same weights, bit for bit, as a run that was never stopped."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import s2s.train
from s2s.cli import main
from tests.conftest import ARCHITECTURE_OPTIONS, TINY_TRAIN_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
TOTAL_STEPS = 120
# Dropout and scheduled sampling make every step draw random numbers, so any misplaced draw shows.
OPTIONS = [*TINY_TRAIN_OPTIONS, "--valid-every", "30", "--seed", "4", "--dropout", "0.2",
           "--teacher-forcing", "0.6", "--teacher-forcing-steps", "100"]


def train_args(data: tuple[Path, Path], out: Path, arch: str, *extra: str) -> list[str]:
    train, dev = data
    return ["train", "--train", str(train), "--dev", str(dev), "--out", str(out), *OPTIONS,
            *ARCHITECTURE_OPTIONS[arch], *extra]


def resume_args(data: tuple[Path, Path], out: Path) -> list[str]:
    # Only the new budget is named: every other setting is read back from the run.
    train, dev = data
    return ["train", "--train", str(train), "--dev", str(dev), "--out", str(out), "--resume",
            "--max-steps", str(TOTAL_STEPS), "--max-time", "0", "--no-progress"]


def saved_state(out: Path) -> dict:
    return torch.load(out / "train_state.pt", weights_only=True)


def assert_same_training_state(run: Path, reference: Path) -> None:
    got, expected = saved_state(run), saved_state(reference)
    assert got["progress"]["step"] == expected["progress"]["step"] == TOTAL_STEPS
    for name, tensor in expected["model"].items():
        assert torch.equal(got["model"][name], tensor), name
    assert torch.equal(got["torch_rng"], expected["torch_rng"])
    for key in ("lr_scale", "schedule_best_bleu", "bad_validations", "epoch", "batch_in_epoch"):
        assert got["progress"][key] == expected["progress"][key], key


@pytest.fixture(scope="module", params=sorted(ARCHITECTURE_OPTIONS))
def arch(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def uninterrupted(reverse_data: tuple[Path, Path], arch: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "model"
    assert main(train_args(reverse_data, out, arch, "--max-steps", str(TOTAL_STEPS))) == 0
    return out


def test_a_time_limit_between_validations_resumes_exactly(reverse_data: tuple[Path, Path], uninterrupted: Path,
                                                           arch: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.count(step=0.01)  # a fake clock: every reading is 10 ms after the previous one
    monkeypatch.setattr(s2s.train.time, "perf_counter", lambda: next(clock))
    out = tmp_path / "model"
    assert main(train_args(reverse_data, out, arch, "--max-steps", str(TOTAL_STEPS), "--max-time", "0.6")) == 0
    stopped = saved_state(out)["progress"]
    assert stopped["finished_reason"] == "max_time"
    assert 30 < stopped["step"] < TOTAL_STEPS and stopped["step"] % 30 != 0  # stopped between validations
    assert main(resume_args(reverse_data, out)) == 0
    assert_same_training_state(out, uninterrupted)


@pytest.mark.parametrize("stop_at", [1, 47, 90])
def test_sigterm_at_any_step_resumes_exactly(reverse_data: tuple[Path, Path], uninterrupted: Path, arch: str,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int) -> None:
    """The signal lands in the middle of a step (before its forward pass); the step finishes and
    training stops at the next step boundary with that state saved."""
    ratio = s2s.train.teacher_forcing_ratio

    def ratio_then_signal(config, step: int) -> float:
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return ratio(config, step)

    monkeypatch.setattr(s2s.train, "teacher_forcing_ratio", ratio_then_signal)
    out = tmp_path / "model"
    assert main(train_args(reverse_data, out, arch, "--max-steps", str(TOTAL_STEPS))) == 0
    stopped = saved_state(out)["progress"]
    assert stopped["finished_reason"] == "interrupted" and stopped["step"] == stop_at + 1
    monkeypatch.setattr(s2s.train, "teacher_forcing_ratio", ratio)
    assert main(resume_args(reverse_data, out)) == 0
    assert_same_training_state(out, uninterrupted)


def test_sigkill_after_a_validation_resumes_exactly(reverse_data: tuple[Path, Path], uninterrupted: Path,
                                                    arch: str, tmp_path: Path) -> None:
    out = tmp_path / "model"
    process = subprocess.Popen([sys.executable, "-m", "s2s", *train_args(reverse_data, out, arch, "--max-steps", "100000")],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "train_state.pt").exists():  # written after the first validation
                break
            time.sleep(0.01)
        process.kill()
    finally:
        process.wait(timeout=30)
    killed_at = saved_state(out)["progress"]["step"]
    assert 30 <= killed_at < TOTAL_STEPS
    # metrics.json is written when training starts, so the killed run's settings survive it.
    assert json.loads((out / "metrics.json").read_text())["train"]["seed"] == 4
    result = subprocess.run([sys.executable, "-m", "s2s", *resume_args(reverse_data, out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert_same_training_state(out, uninterrupted)
