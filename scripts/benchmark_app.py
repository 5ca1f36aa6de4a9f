"""Server time of the explorer for one request: a 15-word sentence, greedy plus beam 5, with
everything the linked view shows (for a Transformer: every head's attention and both
self-attentions).

    python -m scripts.benchmark_app [--model en-fr] [--runs 30]

Calls the same handler the Translate button calls, in-process, with every control at its default
(beam 5, n-best 5), and prints the median and the 90th percentile over the runs after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

from s2s.service import DEFAULT_MODEL
from s2s.translator import source_language
from s2s.ui import explorer

SENTENCES = {  # 15 words in the model's source language (s2s.translator.source_language)
    "en": "My brother and I went to the old market to buy some fresh bread yesterday.",
    "de": "Mein Bruder und ich gingen gestern auf den alten Markt und kauften dort frisches Brot.",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    translator = explorer.service.translator(args.model)
    sentence = SENTENCES.get(source_language(translator.name, translator.metrics), SENTENCES["en"])
    print(f"{len(sentence.split())} words: {sentence}")
    page = explorer.build_app().page
    values = page.explore_values(args.model, sentence)

    def request() -> float:
        started = time.perf_counter()
        page.handlers["explore"](values)
        return (time.perf_counter() - started) * 1000

    request()  # warm-up: loads the model
    times = sorted(request() for _ in range(args.runs))
    print(f"{args.model}: 15-word sentence, greedy + beam 5 + everything the page shows, {args.runs} runs")
    print(f"median {statistics.median(times):.0f} ms, p90 {times[int(0.9 * (len(times) - 1))]:.0f} ms, "
          f"min {times[0]:.0f} ms")


if __name__ == "__main__":
    main()
