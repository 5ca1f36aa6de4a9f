"""Soak test of the explorer as a class uses it for a day: disk and memory must stay bounded.

    python -m scripts.soak_app --page-calls 2000 --api-calls 5500 --warmup 500

Starts ``app.py`` (default options) on a free 127.0.0.1 port with its own temp and Gradio
cache folders, then
1. drives the page's own Translate event (the browser's protocol: queue/join + SSE) for
   ``--page-calls`` translations, each from a new session, pressing "Export result as JSON" after
   every tenth, and counts the files left in the temp and cache folders;
2. calls ``/translate`` ``--api-calls`` times from ``--clients`` threads, each call a new client
   session (as a room of browsers would), and samples the server's resident memory; prints its
   growth after the first ``--warmup`` calls;
3. calls the REST API's ``POST /v1/translate`` ``--rest-calls`` times from ``--clients`` threads,
   each call on a new connection (as ``curl`` makes), and prints the resident memory's growth
   after the first ``--rest-warmup`` calls.
Any phase can be skipped with 0 calls.
Traffic stays on loopback and is bounded in count and in time (``--max-minutes``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from scripts.local_server import ApiClient, api_defaults, resident_mb, running_app

SENTENCES = ["Where is the station?", "I would like a cup of coffee, please.", "Tom didn't know what to say to Mary.",
             "The meeting was postponed until next Thursday afternoon because the manager was sick.",
             "I went to the market this morning. I bought apples and bread. Then I went home."]


def files_under(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())


class PageClient:
    """The page's own events over Gradio's browser protocol (queue/join, then the SSE stream)."""

    def __init__(self, base: str) -> None:
        self.base = base
        config = httpx.get(f"{base}/config", timeout=30).json()
        components = {c["id"]: c for c in config["components"]}
        events = {d.get("api_name"): (index, d) for index, d in enumerate(config["dependencies"])}
        self.explore_index, explore = events["explore"]
        self.export_index, export = events["export"]
        self.explore_inputs = [components[i] for i in explore["inputs"]]
        self.explore_trigger = explore["targets"][0][0]
        self.export_trigger = export["targets"][0][0]
        self.export_inputs = len(export["inputs"])  # the page's state and the reference, sent empty

    def _run(self, client: httpx.Client, session: str, fn_index: int, trigger: int, data: list) -> list:
        joined = client.post(f"{self.base}/gradio_api/queue/join", json={
            "data": data, "fn_index": fn_index, "trigger_id": trigger, "session_hash": session, "event_data": None})
        joined.raise_for_status()
        with client.stream("GET", f"{self.base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    if not message.get("success"):
                        raise RuntimeError(f"event failed: {message.get('output')}")
                    return message["output"]["data"]
        raise RuntimeError("stream closed without a result")

    def translate_and_maybe_export(self, text: str, export: bool) -> None:
        """One page session: Translate (every control at its default), then maybe Export."""
        data = []
        for component in self.explore_inputs:
            props = component["props"]
            value = props.get("value")
            if props.get("elem_id") == "source-text":
                value = text
            data.append(value)
        with httpx.Client(timeout=120) as client:
            session = uuid.uuid4().hex[:11]
            self._run(client, session, self.explore_index, self.explore_trigger, data)
            if export:
                self._run(client, session, self.export_index, self.export_trigger, [None] * self.export_inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--page-calls", type=int, default=2000)
    parser.add_argument("--api-calls", type=int, default=5500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--rest-calls", type=int, default=5000)
    parser.add_argument("--rest-warmup", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=60.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_minutes * 60

    work = Path(tempfile.mkdtemp(prefix="s2s-soak-"))
    (work / "tmp").mkdir()
    (work / "gradio").mkdir()
    env = {"TMPDIR": str(work / "tmp"), "GRADIO_TEMP_DIR": str(work / "gradio")}
    with running_app(env=env) as (base, server, _):
        print(f"server pid {server.pid}, {resident_mb(server.pid):.0f} MB resident at start", flush=True)

        page = PageClient(base)
        started = time.perf_counter()
        for number in range(args.page_calls):
            if time.monotonic() > deadline:
                print("time limit reached")
                break
            page.translate_and_maybe_export(SENTENCES[number % len(SENTENCES)], export=number % 10 == 9)
            if (number + 1) % 250 == 0:
                print(f"page {number + 1}: temp files {files_under(work / 'tmp')}, gradio cache files "
                      f"{files_under(work / 'gradio')}, {resident_mb(server.pid):.0f} MB", flush=True)
        print(f"page phase: {args.page_calls} translations in {time.perf_counter() - started:.0f} s; temp files "
              f"{files_under(work / 'tmp')}, gradio cache files {files_under(work / 'gradio')}", flush=True)

        if args.api_calls:
            defaults = api_defaults(base)
            users = [ApiClient(base, defaults, keep_session=False) for _ in range(args.clients)]
            samples = memory_phase("api", server.pid,
                                   lambda n: users[n % len(users)].translate("en-fr", SENTENCES[n % len(SENTENCES)]),
                                   args.api_calls, args.warmup, args.clients, deadline)
            for user in users:
                user.close()
            print(json.dumps({"resident_mb": samples}))
        if args.rest_calls:
            def one_off(n: int) -> float:
                started = time.perf_counter()
                response = httpx.post(f"{base}/v1/translate", timeout=120,  # a new connection per call
                                      json={"model": "en-fr", "text": SENTENCES[n % len(SENTENCES)]})
                response.raise_for_status()
                return time.perf_counter() - started

            samples = memory_phase("rest", server.pid, one_off, args.rest_calls, args.rest_warmup, args.clients, deadline)
            print(json.dumps({"rest_resident_mb": samples}))


def memory_phase(name: str, pid: int, call, calls: int, warmup: int, clients: int, deadline: float
                 ) -> list[tuple[int, float]]:
    """``calls`` calls of ``call(n)`` (-> seconds) from ``clients`` threads, the server's resident
    memory sampled every 100; prints its growth after ``warmup`` calls. Returns the samples."""
    samples: list[tuple[int, float]] = []
    latencies: list[float] = []
    done = 0
    with ThreadPoolExecutor(clients) as pool:
        while done < calls and time.monotonic() < deadline:
            batch = min(100, calls - done)
            latencies += pool.map(call, range(done, done + batch))
            done += batch
            samples.append((done, resident_mb(pid)))
            if done % 500 == 0:
                print(f"{name} {done}: {samples[-1][1]:.0f} MB resident", flush=True)
    after_warmup = [mb for count, mb in samples if count >= warmup] or [samples[-1][1]]
    print(f"{name} phase: {done} calls, p50 latency {statistics.median(latencies) * 1000:.0f} ms; resident "
          f"{after_warmup[0]:.0f} MB after {warmup} calls, {after_warmup[-1]:.0f} MB at the end "
          f"(growth {after_warmup[-1] - after_warmup[0]:+.0f} MB over {done - warmup} calls; "
          f"peak {max(after_warmup):.0f} MB)", flush=True)
    return samples


if __name__ == "__main__":
    main()
