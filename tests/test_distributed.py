"""Training on PyTorch's distributed engine: torchrun with two CPU processes (gloo) learns
exactly what one process learns from the same global batches, on one node or two, and resumes
exactly after the job is stopped."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ARCHITECTURE_OPTIONS, TINY_TRAIN_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
COMMON = [*TINY_TRAIN_OPTIONS, "--valid-every", "20", "--seed", "3"]


def train_command(data: tuple[Path, Path], out: Path, processes: int, *options: str) -> list[str]:
    train, dev = data
    # --standalone: a rendezvous on a free port, so that runs never race for torchrun's fixed 29500.
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] \
        if processes > 1 else [sys.executable]
    return [*launcher, "-m", "s2s", "train", "--train", str(train), "--dev", str(dev), "--out", str(out), *options]


def run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "train_state.pt", weights_only=True)["model"]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURE_OPTIONS))
def test_two_processes_learn_what_one_process_learns(reverse_data: tuple[Path, Path], tmp_path: Path,
                                                     arch: str) -> None:
    # Without dropout or scheduled sampling the two runs see the same global batches and the same
    # arithmetic but for the order of the gradient sum across the two processes.
    options = [*COMMON, *ARCHITECTURE_OPTIONS[arch], "--max-steps", "40", "--dropout", "0.0", "--teacher-forcing", "1.0"]
    run(train_command(reverse_data, tmp_path / "one", 1, *options))
    run(train_command(reverse_data, tmp_path / "two", 2, *options))
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    for name, tensor in one.items():
        other = two[name]
        if name.endswith("key_value.bias"):
            # A Transformer's key bias moves no output (softmax ignores a shift shared by all keys):
            # its gradient is rounding noise, which Adam scales to full steps. The value bias counts.
            half = tensor.numel() // 2
            tensor, other = tensor[half:], other[half:]
        torch.testing.assert_close(other, tensor, atol=1e-5, rtol=1e-4, msg=name)
    # Rank 0 alone wrote the log: one line per validation, not one per process.
    log = (tmp_path / "two" / "train_log.jsonl").read_text()
    assert log.count('"validation"') == 2 and (tmp_path / "two" / "README.md").exists()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURE_OPTIONS))
def test_a_stopped_two_process_job_resumes_under_torchrun_exactly(reverse_data: tuple[Path, Path],
                                                                  tmp_path: Path, arch: str) -> None:
    # Dropout and scheduled sampling: every step draws random numbers.
    options = [*COMMON, *ARCHITECTURE_OPTIONS[arch], "--dropout", "0.2", "--teacher-forcing", "0.6"]
    run(train_command(reverse_data, tmp_path / "whole", 2, *options, "--max-steps", "80"))
    stopped = tmp_path / "stopped"
    log = (tmp_path / "stopped.log").open("w")
    job = subprocess.Popen(train_command(reverse_data, stopped, 2, *options, "--max-steps", "100000"), cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not (stopped / "train_state.pt").exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        job.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
        job.wait(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
        log.close()
    said = (tmp_path / "stopped.log").read_text()[-3000:]
    state = torch.load(stopped / "train_state.pt", weights_only=True)
    assert 20 <= state["progress"]["step"] < 80 and len(state["rank_rng"]) == 2, said
    run(train_command(reverse_data, stopped, 2, "--resume", "--max-steps", "80", "--max-time", "0", "--no-progress"))
    whole = weights(tmp_path / "whole")
    for name, tensor in weights(stopped).items():
        assert torch.equal(tensor, whole[name]), name


def test_two_nodes_joined_by_a_c10d_rendezvous_learn_what_one_two_process_node_learns(
        reverse_data: tuple[Path, Path], tmp_path: Path) -> None:
    # Two torchrun launches of one process each, as on two machines, meeting at a rendezvous
    # endpoint on loopback and writing into one folder both can see.
    options = [*COMMON, "--max-steps", "20"]
    run(train_command(reverse_data, tmp_path / "one_node", 2, *options))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # The first node hosts the rendezvous store and the second joins it (chosen, not raced for),
    # and a node that cannot join fails within a minute instead of hanging the test.
    def node(hosts: bool) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
                "--rdzv-conf", f"is_host={int(hosts)},join_timeout=60",
                *train_command(reverse_data, tmp_path / "two_nodes", 1, *options)[1:]]

    nodes = [subprocess.Popen(node(hosts), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for hosts in (True, False)]
    errors = []
    for job in nodes:
        try:
            errors.append(job.communicate(timeout=300)[1])
        except subprocess.TimeoutExpired:
            job.kill()
            errors.append("timed out after 300 s:\n" + job.communicate()[1])
    assert all(job.returncode == 0 for job in nodes), errors
    one_node = weights(tmp_path / "one_node")
    for name, tensor in weights(tmp_path / "two_nodes").items():
        torch.testing.assert_close(tensor, one_node[name], atol=1e-6, rtol=1e-5, msg=name)
    assert (tmp_path / "two_nodes" / "train_log.jsonl").read_text().count('"validation"') == 1


def test_a_failing_process_ends_the_whole_job_with_its_error(reverse_data: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    run(train_command(reverse_data, tmp_path / "run", 1, *COMMON, "--max-steps", "2"))
    started = time.monotonic()
    # Rank 0 refuses to overwrite a run; rank 1 is waiting for it and must not hang.
    result = subprocess.run(train_command(reverse_data, tmp_path / "run", 2, *COMMON, "--max-steps", "2"),
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "--resume" in result.stderr
    assert time.monotonic() - started < 120


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_asked_for_on_a_machine_without_it_gets_a_message(reverse_data: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    result = subprocess.run(train_command(reverse_data, tmp_path / "m", 1, *COMMON, "--max-steps", "1",
                                          "--device", "cuda"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "no CUDA GPU" in result.stderr and "Traceback" not in result.stderr


def test_bf16_is_refused_on_a_cpu_without_it_and_trains_a_float32_checkpoint_where_it_runs(
        reverse_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import s2s
    import s2s.hardware
    from s2s.cli import main

    train, dev = reverse_data
    args = ["train", "--train", str(train), "--dev", str(dev), *COMMON, "--max-steps", "60", "--precision", "bf16"]
    monkeypatch.setattr(s2s.hardware, "cpu_has_native_bfloat16", lambda: False)
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    assert not (tmp_path / "refused" / "train_state.pt").exists()
    # Where the CPU has bfloat16 (here pretended: autocast then emulates it), the forward passes
    # run in bfloat16 and the checkpoint is the usual float32-trained folder.
    monkeypatch.setattr(s2s.hardware, "cpu_has_native_bfloat16", lambda: True)
    assert main([*args, "--out", str(tmp_path / "bf16")]) == 0
    losses = [json.loads(line)["loss"] for line in (tmp_path / "bf16" / "train_log.jsonl").read_text().splitlines()
              if '"train"' in line]
    assert losses[-1] < losses[0]
    assert all(t.dtype == torch.float32 for t in weights(tmp_path / "bf16").values())
    assert s2s.load(tmp_path / "bf16").translate("red cat", strategy="greedy")["sentences"][0]["hypotheses"]
    assert json.loads((tmp_path / "bf16" / "metrics.json").read_text())["train"]["precision"] == "bf16"
