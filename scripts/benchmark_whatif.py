"""Server time of the explorer's what-if questions on one 15-word sentence, in-process.

    python -m scripts.benchmark_whatif [--model en-fr] [--runs 20]

Times, after one warm-up, the median and 90th percentile of: an attention override re-decode
(greedy + beam 5 are not re-run: one beam-5 re-decode steered at step 3), an alternative
re-decode (beam 5), integrated gradients (the default steps) and input x gradient of the beam-5 output,
scoring a translation (force-decoding the beam output), and the 10 nearest training pieces of
the 3rd output piece and of the 3rd source piece (the model's neighbour index, loaded before
timing; its load time is printed first).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

import s2s
from s2s.saliency import DEFAULT_STEPS
from scripts.benchmark_app import SENTENCES

SENTENCE = SENTENCES["en"]

ROOT = Path(__file__).resolve().parent.parent


def timed(action: Callable[[], object], runs: int) -> list[float]:
    action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="en-fr")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    translator = s2s.load(ROOT / "checkpoints" / args.model)
    sentence = translator.translate(SENTENCE, split_sentences=False)["sentences"][0]
    best = sentence["hypotheses"][0]
    width = len(sentence["source_pieces"])
    actions = {
        "override re-decode (beam 5)": lambda: translator.redecode(SENTENCE, best["ids"][:3],
                                                                   steering={3: [1.0 / width] * width}),
        "alternative re-decode (beam 5)": lambda: translator.redecode(
            SENTENCE, translator.edited_prefix(best["ids"], 1, best["alternatives"][1][1]["id"])),
        f"integrated gradients, {DEFAULT_STEPS} steps": lambda: translator.saliency(SENTENCE, best["ids"],
                                                                                 "integrated_gradients"),
        "input x gradient": lambda: translator.saliency(SENTENCE, best["ids"], "input_x_gradient"),
        "score a translation": lambda: translator.score(SENTENCE, best["text"]),
    }
    if (ROOT / "checkpoints" / args.model / "index").is_dir():
        started = time.perf_counter()
        translator.neighbour_index.get()
        print(f"neighbour index loaded in {(time.perf_counter() - started) * 1000:.0f} ms")
        actions["neighbours, output word (k=10)"] = lambda: translator.neighbours(SENTENCE, best["ids"], "output", 2, 10)
        actions["neighbours, source word (k=10)"] = lambda: translator.neighbours(SENTENCE, best["ids"], "source", 2, 10)
    print(f"{args.model}, {len(SENTENCE.split())}-word sentence, {len(best['ids'])} output pieces, {args.runs} runs")
    for name, action in actions.items():
        times = timed(action, args.runs)
        print(f"{name:<32} median {statistics.median(times):7.1f} ms   p90 {times[int(0.9 * (len(times) - 1))]:7.1f} ms")


if __name__ == "__main__":
    main()
