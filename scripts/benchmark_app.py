"""Server time of the explorer for one request: a 15-word sentence, greedy plus beam 5, with
every figure (two heatmaps, the beam tree), the token views, the n-best table and the JSON export.

    python -m scripts.benchmark_app [--model en-fr] [--runs 30]

Calls the same function the Translate button calls (app.explore), in-process, and prints the
median and the 90th percentile over the runs after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import app

SENTENCE = "My brother and I went to the old market to buy some fresh bread yesterday."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=app.DEFAULT_MODEL)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(f"{len(SENTENCE.split())} words: {SENTENCE}")

    def request() -> float:
        started = time.perf_counter()
        app.explore(args.model, SENTENCE, "beam", 5, 5, 0.6, 2.0, 0, 1.0, 0, 1.0, 0, "", "", False)
        return (time.perf_counter() - started) * 1000

    request()  # warm-up: loads the model
    times = sorted(request() for _ in range(args.runs))
    print(f"{args.model}: 15-word sentence, greedy + beam 5 + all figures, {args.runs} runs")
    print(f"median {statistics.median(times):.0f} ms, p90 {times[int(0.9 * (len(times) - 1))]:.0f} ms, "
          f"min {times[0]:.0f} ms")


if __name__ == "__main__":
    main()
