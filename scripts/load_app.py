"""Throughput and latency of ``/translate`` under concurrent clients, with and without batching.

    python -m scripts.load_app --clients 1 8 32 100

Starts ``app.py`` on a free 127.0.0.1 port twice: as the app was before batching (every request
decoded alone, two at a time: ``--max-batch 1 --concurrency 2``) and with its defaults
(concurrent requests decoded together). For each number of concurrent clients it sends
``--rounds`` x clients calls (beam 5, short sentences, each call a new session) and prints
requests per second and p50/p95 latency. The clients run on the same machine, so they take some
of its CPU from the server. Loopback only; bounded in count and time (``--max-minutes``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from scripts.local_server import api_call, api_defaults, running_app

SENTENCES = ["Where is the station?", "I would like a cup of coffee, please.", "Tom didn't know what to say to Mary.",
             "The cat is sleeping on the red chair.", "We have to leave before it starts raining.",
             "Do you know where the station is?", "I love you.", "How are you today?"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32, 100])
    parser.add_argument("--rounds", type=int, default=3, help="calls per client at each level")
    parser.add_argument("--model", default="en-fr")
    parser.add_argument("--max-minutes", type=float, default=20.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_minutes * 60
    print(f"{'server':>14} {'clients':>7} {'calls':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for label, options in (("each alone", ["--max-batch", "1", "--concurrency", "2"]), ("batched", [])):
        with running_app(*options) as (base, _):
            defaults = api_defaults(base)
            api_call(base, defaults, args.model, "Hello.")  # load the model
            for clients in args.clients:
                if time.monotonic() > deadline:
                    print("time limit reached")
                    return
                calls = clients * args.rounds
                started = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    latencies = list(pool.map(
                        lambda n: api_call(base, defaults, args.model, SENTENCES[n % len(SENTENCES)]), range(calls)))
                seconds = time.perf_counter() - started
                print(f"{label:>14} {clients:>7} {calls:>5} {calls / seconds:>7.1f} "
                      f"{statistics.median(latencies) * 1000:>7.0f} {percentile(latencies, 95) * 1000:>7.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
