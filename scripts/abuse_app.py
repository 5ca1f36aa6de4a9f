"""What hostile-looking but ordinary requests cost the running explorer (loopback only, bounded).

    python -m scripts.abuse_app [--burst 20] [--translations 30]

Starts ``app.py`` on a free 127.0.0.1 port with its own Gradio cache folder, then prints one
figure per problem of the hardening issue:
1. saliency (integrated gradients, the default steps) of a 20-word sentence through the page's own server
   function: seconds and the server's resident memory before and at its peak;
2. ``--burst`` saliency calls sent at once through the page's server function while a client
   calls ``/translate`` ``--translations`` times: the translations' median and 90th percentile,
   and how many saliency calls were answered or told the server was busy;
3. resident memory a minute after the burst, against before it;
4. a one-line .gz upload that unpacks to 200 MB, read by the Train tab's reader: refused, and the
   memory it took (in this process, where the reader runs);
5. files left in Gradio's upload folder after uploading a 60 MB file to ``/gradio_api/upload``;
6. the security headers of the page.
(The login throttle is checked by tests/test_robustness.py.)
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from s2s.uploads import read_upload
from scripts.local_server import ApiClient, api_defaults, resident_mb, running_app

SENTENCE = ("the young doctor told my older brother that the small village near the river had no school and no "
            "hospital so every family walked.")


class PageServerFunctions:
    """The linked view's server functions, called as the page calls them (component_server)."""

    def __init__(self, base: str) -> None:
        config = httpx.get(f"{base}/config", timeout=30).json()
        self.component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "linked-view")
        self.base = base

    def call(self, name: str, data: dict) -> dict:
        body = {"session_hash": uuid.uuid4().hex, "component_id": self.component, "fn_name": name, "data": data}
        answer = httpx.post(f"{self.base}/gradio_api/component_server", json=body, timeout=600)
        answer.raise_for_status()
        return json.loads(answer.json())


def output_ids(base: str) -> list[int]:
    """The greedy output's piece ids of SENTENCE, by the named /alternatives endpoint."""
    from gradio_client import Client

    return Client(base, verbose=False).predict(model="en-fr", text=SENTENCE, strategy="greedy",
                                               api_name="/alternatives")["ids"]


def peak_while(pid: int, work) -> tuple[float, float, object]:
    """Run ``work()``, sampling the server's resident memory: (before MB, peak MB, result)."""
    before, peak, done = resident_mb(pid), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return before, peak[0], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--translations", type=int, default=30)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait after the burst")
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="s2s-abuse-"))
    with running_app(env={"GRADIO_TEMP_DIR": str(cache)}) as app:
        pid = app.process.pid
        page = PageServerFunctions(app.url)
        ids = output_ids(app.url)
        request = {"model": "en-fr", "source": SENTENCE, "ids": ids, "method": "integrated_gradients"}
        started = time.perf_counter()
        before, peak, answer = peak_while(pid, lambda: page.call("saliency", request))
        assert "saliency" in answer, answer
        print(f"1. saliency of a {len(SENTENCE.split())}-word sentence ({len(ids)} output pieces): "
              f"{time.perf_counter() - started:.1f} s, resident {before:.0f} -> peak {peak:.0f} MB "
              f"(+{peak - before:.0f}); convergence delta max {max(answer['saliency']['convergence']):.2e}")

        client = ApiClient(app.url, api_defaults(app.url), keep_session=True)
        client.translate("en-fr", "Where is the station?")  # warm
        burst_before = resident_mb(pid)
        outcomes: list[str] = []

        def one_saliency(_: int) -> None:
            result = page.call("saliency", request)
            outcomes.append("answered" if "saliency" in result else result.get("error", "?")[:40])

        with ThreadPoolExecutor(args.burst) as pool:
            futures = [pool.submit(one_saliency, n) for n in range(args.burst)]
            time.sleep(0.5)
            seconds = [client.translate("en-fr", "I would like a cup of coffee, please.")
                       for _ in range(args.translations)]
            for future in futures:
                future.result()
        seconds.sort()
        print(f"2. /translate during {args.burst} saliency calls sent at once: median {statistics.median(seconds):.2f} s, "
              f"p90 {seconds[int(0.9 * (len(seconds) - 1))]:.2f} s; saliency: "
              + ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes))))
        time.sleep(args.settle)
        print(f"3. resident memory: {burst_before:.0f} MB before the burst, {resident_mb(pid):.0f} MB "
              f"{args.settle:.0f} s after it")

        bomb = cache / "bomb.tsv.gz"
        with gzip.open(bomb, "wb") as out:
            for _ in range(200):
                out.write(b"a" * 2**20)
        tracemalloc.start()
        try:
            read_upload([bomb])
            refused = "accepted"
        except ValueError as error:
            refused = f"refused ({error})"
        peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"4. a {bomb.stat().st_size // 1024} KB .gz of one 200 MB line: {refused}; peak "
              f"{peak_bytes / 2**20:.1f} MB")

        big = cache / "big.tsv"
        big.write_bytes(b"x" * (60 * 2**20))
        uploads_before = sum(1 for p in cache.rglob("*") if p.is_file())
        with big.open("rb") as handle:
            status = httpx.post(f"{app.url}/gradio_api/upload", files={"files": handle}, timeout=120).status_code
        uploads_after = sum(1 for p in cache.rglob("*") if p.is_file())
        print(f"5. a 60 MB file to /gradio_api/upload: HTTP {status}; files in the cache {uploads_before} -> "
              f"{uploads_after}")
        headers = httpx.get(app.url, timeout=30).headers
        print("6. headers: " + ", ".join(f"{name}: {headers.get(name)}" for name in (
            "x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy")))
        client.close()


if __name__ == "__main__":
    main()
