"""Translation speed of models, measured as a user meets it: the whole `python -m s2s translate`
process (start-up and model loading included) over a file of sentences.

    python -m scripts.benchmark_speed --model checkpoints/de-en [checkpoints/de-en-transformer ...] \
        --source ../shared/data/multi30k/test_2016_flickr.de.gz [--no-bf16] [--save]

Rows: greedy and beam 5 in batches of 64, and beam 5 one sentence at a time (--batch-size 1);
beam 5 again with the output layer in bfloat16 (--bf16-output) unless --no-bf16. Several models
are timed row by row, one after the other, so that each row compares them in the same minutes.
Also prints the training speed recorded in metrics.json. --save stores the figures in metrics.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from s2s.card import update_metrics
from s2s.checkpoint import read_metrics
from s2s.data import open_text

ROOT = Path(__file__).resolve().parent.parent
RUNS = (("greedy, batches of 64", ["--strategy", "greedy", "--batch-size", "64"]),
        ("beam 5, batches of 64", ["--strategy", "beam", "--beam-size", "5", "--batch-size", "64"]),
        ("beam 5, one sentence at a time", ["--strategy", "beam", "--beam-size", "5", "--batch-size", "1"]),
        ("beam 5, batches of 64, --bf16-output",
         ["--strategy", "beam", "--beam-size", "5", "--batch-size", "64", "--bf16-output"]),
        ("beam 5, one sentence at a time, --bf16-output",
         ["--strategy", "beam", "--beam-size", "5", "--batch-size", "1", "--bf16-output"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, nargs="+", required=True)
    parser.add_argument("--no-bf16", action="store_true", help="skip the --bf16-output rows")
    parser.add_argument("--source", type=Path, required=True, help="one sentence per line (.gz accepted)")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()

    with open_text(args.source) as handle:
        lines = [line.rstrip("\n") for line in handle]
    text = "\n".join(lines) + "\n"
    speed: dict[Path, dict[str, object]] = {model: {} for model in args.model}
    for label, options in RUNS:
        if args.no_bf16 and "--bf16-output" in options:
            continue
        for model in args.model:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "s2s", "translate", "--model", str(model), *options],
                           input=text, text=True, stdout=subprocess.DEVNULL, check=True, cwd=ROOT)
            seconds = time.perf_counter() - started
            speed[model][f"sentences/s, {label} (whole process)"] = round(len(lines) / seconds, 1)
            print(f"{model.name:<20} {label:<46} {len(lines) / seconds:8.1f} sentences/s  "
                  f"({seconds:.1f} s for {len(lines)})")
    for model in args.model:
        training = read_metrics(model).get("training", {}).get("tokens_per_second")
        if training:
            print(f"{model.name:<20} {'training':<46} {training:8.1f} target tokens/s (from metrics.json)")
            speed[model]["training target tokens/s"] = training
        speed[model]["measured on"] = f"{torch.get_num_threads()} CPU threads, {len(lines)} sentences of {args.source.name}"
        if args.save:
            update_metrics(model, {"speed": speed[model]})


if __name__ == "__main__":
    main()
