"""Training throughput (target tokens per second) of one recipe on 1 or N processes.

    python -m scripts.benchmark_scaling --train ../shared/data/tatoeba/eng-fra.train.tsv.gz \
        --dev ../shared/data/tatoeba/eng-fra.dev.tsv.gz --steps 150

Prepares one run (tokenizer, initial weights; the training defaults are en-fr's recipe), then
trains ``--steps`` steps from that same starting point in each layout — 1 process x 2 threads,
1 x 1, and 2 processes x 1 thread under torchrun (gloo) — and prints each layout's target
tokens per second over its steps, with the scaling efficiency of the 2-process run against
1 process x 1 thread (2 x the single-thread speed would be 100%). With ``--gpu`` the layouts are
one GPU in fp32 and in bf16 autocast instead (the same recipe, batches and starting point).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (label, processes, threads per process, extra training options)
CPU_LAYOUTS = [("1 process x 2 threads", 1, 2, ()), ("1 process x 1 thread", 1, 1, ()),
               ("2 processes x 1 thread", 2, 1, ())]
GPU_LAYOUTS = [("1 GPU, fp32", 1, 2, ("--device", "cuda", "--precision", "fp32")),
               ("1 GPU, bf16 autocast", 1, 2, ("--device", "cuda", "--precision", "bf16"))]


def train(data: list[str], out: Path, processes: int, *options: str) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)] \
        if processes > 1 else [sys.executable]
    finished = subprocess.run([*launcher, "-m", "s2s", "train", *data, "--out", str(out), "--no-progress", *options],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"training failed ({' '.join(options)}):\n{finished.stderr[-3000:]}")


def steps_speed(out: Path, after_step: int) -> float:
    """Target tokens per second over the training records logged after ``after_step``."""
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    speeds = [r["tokens_per_second"] for r in records if r["event"] == "train" and r["step"] > after_step + 1]
    return sum(speeds) / max(1, len(speeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--dev", nargs="+", required=True)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--gpu", action="store_true", help="time one GPU in fp32 and bf16 instead of the CPU layouts")
    args = parser.parse_args()
    data = ["--train", *args.train, "--dev", *args.dev]
    work = Path(tempfile.mkdtemp(prefix="s2s-scaling-"))
    try:
        base = work / "base"
        train(data, base, 1, "--max-steps", "1", "--valid-every", "1000000", "--threads", "2", "--device", "cpu")
        speeds = {}
        for number, (label, processes, threads, options) in enumerate(GPU_LAYOUTS if args.gpu else CPU_LAYOUTS):
            out = work / f"layout{number}"
            shutil.copytree(base, out)
            train(data, out, processes, "--resume", "--max-steps", str(1 + args.steps), "--threads", str(threads),
                  *options)
            speeds[label] = steps_speed(out, after_step=1)
            print(f"{label:<24} {speeds[label]:>8,.0f} target tokens/s", flush=True)
        if args.gpu:
            print(f"bf16 against fp32: {speeds['1 GPU, bf16 autocast'] / speeds['1 GPU, fp32']:.2f}x")
            return
        efficiency = speeds["2 processes x 1 thread"] / (2 * speeds["1 process x 1 thread"])
        print(f"scaling efficiency of 2 processes against 1 x 1: {efficiency:.0%}; against 1 x 2: "
              f"{speeds['2 processes x 1 thread'] / speeds['1 process x 2 threads']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
