"""Throughput and latency of ``/translate`` under concurrent clients, with and without batching.

    python -m scripts.load_app --clients 1 8 32 100

Starts ``app.py`` on a free 127.0.0.1 port twice: as the app was before batching (every request
decoded alone, two at a time: ``--max-batch 1 --concurrency 2``) and with its defaults
(concurrent requests decoded together). For each number of concurrent clients, every client
makes ``--rounds`` calls one after another (beam 5, short sentences) on its own kept-alive
connection, and the script prints requests per second and p50/p95 latency, twice: with clients
that keep their session (a browser tab, ``gradio_client``) and with clients that start a new
server session at every call (``curl``). The batched server is also called through the REST API
(``POST /v1/translate``, a new connection per call, as ``curl`` makes), in the same run. The
clients run on the same machine, so they take some of its CPU from the server. Loopback only;
bounded in count and time (``--max-minutes``).

    python -m scripts.load_app --servers --rest-workers 1 2 --clients 32

starts the REST API alone (``python -m s2s serve --workers N``) for each N and measures its
one-off calls the same way, with the resident memory of every worker after the run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from scripts.local_server import ApiClient, api_defaults, resident_mb, running_app, running_rest, worker_processes

SENTENCES = ["Where is the station?", "I would like a cup of coffee, please.", "Tom didn't know what to say to Mary.",
             "The cat is sleeping on the red chair.", "We have to leave before it starts raining.",
             "Do you know where the station is?", "I love you.", "How are you today?"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class RestClient:
    """One-off calls of ``POST /v1/translate``: a new connection for every call, as ``curl`` makes.

    One ``httpx.Client`` per simulated user, each call sent with ``Connection: close``: the server
    sees a new TCP connection per call, as from ``curl``, but the client does not build a new
    ``httpx.Client`` (about 20 ms of CPU here, nearly all of it an SSL context a plain-HTTP call
    never uses) on the two cores the server is measured on."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(timeout=300, headers={"Connection": "close"})

    def translate(self, model: str, text: str) -> float:
        started = time.perf_counter()
        answer = self.http.post(f"{self.base}/v1/translate", json={"model": model, "text": text})
        answer.raise_for_status()
        return time.perf_counter() - started

    def close(self) -> None:
        self.http.close()


def load(base: str, defaults: list, model: str, clients: int, rounds: int,
         door: str) -> tuple[float, list[float]]:
    """``clients`` clients at once, each making ``rounds`` calls through ``door`` ("kept", "new per
    call" or "rest"); returns (seconds, latencies)."""
    users = [RestClient(base) if door == "rest" else ApiClient(base, defaults, door == "kept") for _ in range(clients)]

    def calls(number: int) -> list[float]:
        return [users[number].translate(model, SENTENCES[(number + n) % len(SENTENCES)]) for n in range(rounds)]

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            latencies = [seconds for client in pool.map(calls, range(clients)) for seconds in client]
    finally:
        for user in users:
            user.close()
    return time.perf_counter() - started, latencies


def report(server: str, door: str, clients: int, seconds: float, latencies: list[float]) -> None:
    """One row of the table: calls, requests per second, p50 and p95 latency."""
    print(f"{server:>10} {door:>12} {clients:>7} {len(latencies):>5} {len(latencies) / seconds:>7.1f} "
          f"{statistics.median(latencies) * 1000:>7.0f} {percentile(latencies, 95) * 1000:>7.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32, 100])
    parser.add_argument("--rounds", type=int, default=4, help="calls per client at each level")
    parser.add_argument("--model", default="en-fr")
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--servers", nargs="*", choices=["each alone", "batched"], default=["each alone", "batched"])
    parser.add_argument("--rest-workers", nargs="*", type=int, default=[],
                        help="also serve the REST API alone with this many workers (one run per number)")
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_minutes * 60
    print(f"{'server':>10} {'door':>12} {'clients':>7} {'calls':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for label, options in (("each alone", ["--max-batch", "1", "--concurrency", "2"]), ("batched", [])):
        if label not in args.servers:
            continue
        with running_app(*options) as (base, _, _):
            defaults = api_defaults(base)
            load(base, defaults, args.model, 1, 1, "kept")  # load the model
            for door in ("kept", "new per call") + (("rest",) if label == "batched" else ()):
                for clients in args.clients:
                    if time.monotonic() > deadline:
                        print("time limit reached")
                        return
                    report(label, door, clients, *load(base, defaults, args.model, clients, args.rounds, door))
    for workers in args.rest_workers:
        with running_rest("--workers", str(workers)) as (base, server, _):
            label = f"{workers} worker" + "s" * (workers > 1)
            # Every worker loads its own models on its first calls: warm them all up.
            load(base, [], args.model, 4 * workers, 2, "rest")
            for clients in args.clients:
                if time.monotonic() > deadline:
                    print("time limit reached")
                    return
                report(label, "rest alone", clients, *load(base, [], args.model, clients, args.rounds, "rest"))
            processes = worker_processes(server.pid) if workers > 1 else [server.pid]
            print(f"{label}: resident MB per worker " + ", ".join(f"{resident_mb(pid):.0f}" for pid in processes)
                  + (f"; supervisor {resident_mb(server.pid):.0f}" if workers > 1 else ""), flush=True)


if __name__ == "__main__":
    main()
