"""What programs and busy classrooms cost the running server (loopback only, bounded traffic).

    python -m scripts.abuse_server [--phases stall huge mix soak] [--soak-calls 10000]

Starts ``app.py --max-loaded-models 3`` on a free 127.0.0.1 port with its own Gradio folder and
prints one figure per target of the server issue:

- ``stall``: ``/healthz`` latency (median, p99, max) while 20 LibreTranslate calls of 40 texts
  each decode at once;
- ``huge``: a 50,000-text request to ``/v1/translate`` and to LibreTranslate's ``/translate``:
  status, time to the answer, resident memory before and after;
- ``mix``: at once, 16 sampling requests of 64 samples (12 of 50 sentences, 4 of one), 20
  saliency requests (a 20-word sentence, 16 steps, and 4 at 256 steps), 4 lists of 20 texts at
  beam 16 (2 of 50 sentences each, 2 of 5) and 10 uploads of 10 MB, while a prober translates one sentence every 0.2 s: the prober's p95,
  the peak resident memory above idle, and the memory a minute after;
- ``soak``: ``--soak-calls`` mixed calls over the six shipped models (translate, alternatives,
  score; 4 clients): resident memory at the start and the end.

The clients run in this process on asyncio with one connection pool, so they take little of the
two cores the server runs on.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from scripts.local_server import resident_mb, running_app

MODELS = ["en-fr", "en-es", "en-de", "de-en", "de-en-transformer", "en-fr-noattn"]
SENTENCE = "The young doctor told my brother that the small village near the river had no school."
WORDS = ("the young doctor told my older brother that the small village near the river had no school and no "
         "hospital so every family walked")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


class MemoryWatch:
    """The server's resident memory, sampled every 0.1 s in a thread: its peak since ``reset``."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.running = pid, 0.0, True
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while self.running:
            self.peak = max(self.peak, resident_mb(self.pid))
            time.sleep(0.1)

    def reset(self) -> float:
        self.peak = resident_mb(self.pid)
        return self.peak


async def stall(http: httpx.AsyncClient, base: str) -> None:
    texts = [f"{SENTENCE} Number {n}." for n in range(40)]
    done = asyncio.Event()
    waits: list[float] = []
    began = time.perf_counter()
    slowest: list[tuple[float, float]] = []  # (wait, seconds into the phase)

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await http.get(f"{base}/healthz")
            waits.append(time.perf_counter() - started)
            slowest.append((waits[-1], started - began))
            await asyncio.sleep(0.05)

    async def call() -> tuple[int, float]:
        started = time.perf_counter()
        answer = await http.post(f"{base}/translate", json={"q": texts, "source": "en", "target": "fr"})
        return answer.status_code, time.perf_counter() - started

    prober = asyncio.create_task(probe())
    results = await asyncio.gather(*(call() for _ in range(20)))
    done.set()
    await prober
    statuses = sorted({status for status, _ in results})
    print(f"stall: 20 LibreTranslate calls of 40 texts: statuses {statuses}, each took "
          f"{statistics.median(t for _, t in results):.1f} s (median), {max(t for _, t in results):.1f} s (max)")
    print(f"stall: /healthz meanwhile ({len(waits)} probes): median {1000 * statistics.median(waits):.1f} ms, "
          f"p99 {1000 * percentile(waits, 0.99):.1f} ms, max {1000 * max(waits):.1f} ms; the slowest (ms at s): " +
          ", ".join(f"{1000 * wait:.0f} at {at:.1f}" for wait, at in sorted(slowest, reverse=True)[:5]))


async def huge(http: httpx.AsyncClient, base: str, pid: int) -> None:
    for path, body in (("/v1/translate", {"text": ["a"] * 50_000}),
                       ("/translate", {"q": ["a"] * 50_000, "source": "en", "target": "fr"})):
        before = resident_mb(pid)
        started = time.perf_counter()
        answer = await http.post(f"{base}{path}", json=body)
        took = time.perf_counter() - started
        print(f"huge: 50,000 texts to {path}: {answer.status_code} in {1000 * took:.0f} ms, resident "
              f"{before:.0f} -> {resident_mb(pid):.0f} MB: {answer.text[:120]}")


async def mix(http: httpx.AsyncClient, base: str, pid: int, watch: MemoryWatch, upload_folder: Path) -> None:
    idle = watch.reset()
    paragraph = " ".join(f"{SENTENCE}" for _ in range(50))
    done = asyncio.Event()
    waits: list[float] = []

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            answer = await http.post(f"{base}/v1/translate", json={"text": "Where is the station?"})
            waits.append(time.perf_counter() - started if answer.status_code == 200 else float("inf"))
            await asyncio.sleep(0.2)

    async def post(kind: str, path: str, body: dict) -> tuple[str, int]:
        return kind, (await http.post(f"{base}{path}", json=body)).status_code

    async def upload() -> tuple[str, int]:
        files = {"files": ("big.tsv", random.randbytes(10 * 2**20), "text/plain")}  # distinct: Gradio keeps one copy
        return "upload 10 MB", (await http.post(f"{base}/gradio_api/upload", files=files)).status_code

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    one_sentence = "Where is the station?"
    jobs = [post("sample 50 sentences x 64", "/v1/translate", {"text": paragraph, "strategy": "sample", "nbest": 64})
            for _ in range(12)]
    jobs += [post("sample 1 sentence x 64", "/v1/translate", {"text": one_sentence, "strategy": "sample", "nbest": 64})
             for _ in range(4)]
    jobs += [post("saliency 20 words", "/v1/saliency", {"text": " ".join(WORDS.split()[:20])}) for _ in range(16)]
    jobs += [post("saliency 256 steps", "/v1/saliency", {"text": WORDS, "steps": 256}) for _ in range(4)]
    jobs += [post("20 x 50 sentences beam 16", "/v1/translate", {"text": [paragraph] * 20, "beam_size": 16})
             for _ in range(2)]
    jobs += [post("20 x 5 sentences beam 16", "/v1/translate",
                  {"text": [" ".join([SENTENCE] * 5)] * 20, "beam_size": 16}) for _ in range(2)]
    jobs += [upload() for _ in range(10)]
    answers = await asyncio.gather(*jobs)
    took = time.perf_counter() - started
    done.set()
    await prober
    peak = watch.peak
    counts: dict[str, dict[int, int]] = {}
    for kind, status in answers:
        counts.setdefault(kind, {})[status] = counts.setdefault(kind, {}).get(status, 0) + 1
    finite = [w for w in waits if w != float("inf")]
    print(f"mix: {len(answers)} requests at once answered in {took:.1f} s; statuses by kind: " +
          "; ".join(f"{kind} {dict(sorted(statuses.items()))}" for kind, statuses in counts.items()))
    print(f"mix: one-sentence prober ({len(waits)} calls, {len(waits) - len(finite)} refused): median "
          f"{1000 * statistics.median(finite):.0f} ms, p95 {1000 * percentile(waits, 0.95):.0f} ms")
    print(f"mix: resident memory idle {idle:.0f} MB, peak {peak:.0f} MB ({peak - idle:+.0f} MB)")
    await asyncio.sleep(60)
    print(f"mix: a minute later {resident_mb(pid):.0f} MB ({resident_mb(pid) - idle:+.0f} MB); upload folder "
          f"{sum(p.stat().st_size for p in upload_folder.rglob('*') if p.is_file()) / 2**20:.0f} MB")


async def soak(http: httpx.AsyncClient, base: str, pid: int, calls: int) -> None:
    rng = random.Random(0)
    start = resident_mb(pid)
    sources = {"en": "Where is the station? I have lost my way.", "de": "Wo ist der Bahnhof? Ich habe mich verlaufen."}
    queue = list(range(calls))
    statuses: dict[int, int] = {}

    async def client() -> None:
        while queue:
            left = queue.pop()
            if left % 1000 == 0 and left < calls - 1:
                print(f"soak: after {calls - left:,} calls resident {resident_mb(pid):.0f} MB", flush=True)
            model = rng.choice(MODELS)
            text = sources[model[:2]]
            kind = rng.random()
            if kind < 0.6:
                answer = await http.post(f"{base}/v1/translate", json={"model": model, "text": text})
            elif kind < 0.8:
                answer = await http.post(f"{base}/v1/alternatives", json={"model": model, "text": text})
            else:
                answer = await http.post(f"{base}/v1/score", json={"model": model, "text": text, "target": "x y"})
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(4)))
    print(f"soak: {calls:,} mixed calls over {len(MODELS)} models in {time.perf_counter() - started:.0f} s, "
          f"statuses {dict(sorted(statuses.items()))}; resident {start:.0f} -> {resident_mb(pid):.0f} MB "
          f"({resident_mb(pid) - start:+.0f} MB)")


async def main_async(args: argparse.Namespace, base: str, pid: int, upload_folder: Path) -> None:
    watch = MemoryWatch(pid)
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        print(f"idle: resident {resident_mb(pid):.0f} MB")
        for phase in args.phases:
            if phase == "stall":
                await stall(http, base)
            elif phase == "huge":
                await huge(http, base, pid)
            elif phase == "mix":
                await mix(http, base, pid, watch, upload_folder)
            elif phase == "soak":
                await soak(http, base, pid, args.soak_calls)
    watch.running = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", nargs="+", default=["stall", "huge", "mix", "soak"],
                        choices=["stall", "huge", "mix", "soak"])
    parser.add_argument("--soak-calls", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s2s-abuse-") as folder:
        with running_app("--max-loaded-models", "3", env={"GRADIO_TEMP_DIR": folder}) as app:
            asyncio.run(main_async(args, app.url, app.process.pid, Path(folder)))
            errors = [line for line in app.log().splitlines() if "Traceback" in line or " 500 " in line]
            print(f"server log: {len(errors)} tracebacks or 500s")


if __name__ == "__main__":
    main()
