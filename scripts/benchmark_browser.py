"""What a person waits for in the explorer, measured in headless Chromium on loopback.

    python -m scripts.benchmark_browser [--runs 20] [--transformer de-en-transformer]

Starts ``app.py`` (en-fr, every control at its default: greedy + beam 5, n-best 5), then per run:
- translate: click Translate on a 15-word sentence (two alternate) until the linked view (both columns, the
  heatmap and the beam tree) is drawn;
- select: click an n-best row until every linked view shows it (in the page, no server call;
  the number of requests sent is checked to be 0);
- re-decode: click a word, pick its runner-up alternative, until the edited output is drawn;
  also timed inside the page ("re-decode in page": from the click event to the edit in the DOM,
  without Playwright's own click and wait).
Prints the median and 90th percentile of each, over the runs after one warm-up; then the first
screen as a class sees it: the bare page load until the text box takes input, and its error badges;
after the first translation, whether the outputs, the n-best list and the heatmap lie inside
1280x720; whether a clicked word's alternatives appear in view; axe-core's serious violations.
With ``--transformer MODEL``, also a Transformer's head views on a 15-word German sentence: the
linked view redrawn with the grid of every head (switching the grid between cross, encoder and
decoder attention: all of it is drawn again, in the page), and a head picked into the heatmap.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time

from playwright.sync_api import sync_playwright

from scripts.benchmark_app import SENTENCES
from scripts.local_server import running_app
from scripts.page_checks import FIRST_SCREEN, box, error_badges, in_view, inside, serious_violations

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# The view redraws its whole content for a new result, so a mark on the old content tells them apart.
LINKED_VIEW_DRAWN = """() => { const columns = document.querySelector('#linked-view .lv-cols');
  return columns && !columns.dataset.old && columns.children.length === 2 &&
         document.querySelector('#linked-view .lv-tree'); }"""
# Time an n-best click inside the page: the handler redraws every linked view synchronously.
# Inside the page: the time of the last click event, and when the first edit entered the DOM.
WATCH_EDITS = """() => { window.__edit = {};
  document.addEventListener('click', () => { window.__edit = { click: performance.now() }; }, true);
  new MutationObserver(() => { if (!window.__edit.drawn && document.querySelector('#linked-view .lv-edit'))
    window.__edit.drawn = performance.now(); }).observe(document.body, { subtree: true, childList: true }); }"""
# Inside the page: redraw the linked view by switching the head grid's kind, or pick a head.
REDRAW_HEADS = """(kind) => { const radio = document.querySelector(`#linked-view .lv-head-kind[value="${kind}"]`);
  const started = performance.now(); radio.click();
  return document.querySelectorAll('#linked-view .lv-head-canvas').length ? performance.now() - started : -1; }"""
PICK_HEAD = """(index) => { const canvas = document.querySelectorAll('#linked-view .lv-head-canvas')[index];
  const started = performance.now(); canvas.click();
  return document.querySelector('#linked-view .lv-head-shown') ? performance.now() - started : -1; }"""
SELECT = """(row) => { const started = performance.now(); row.click();
  const ok = document.querySelector('#linked-view .lv-col[data-column="1"] h2').innerText.includes('#' + (Number(row.dataset.hypothesis) + 1));
  return ok ? performance.now() - started : -1; }"""


def summary(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    return (f"{name:<17} median {statistics.median(ordered):7.1f} ms   p90 {ordered[int(0.9 * (len(ordered) - 1))]:7.1f} ms"
            f"   ({len(ordered)} runs)")


SENTENCE = SENTENCES["en"]


def head_views(browser, url: str, model: str, runs: int) -> dict[str, list[float]]:
    """In-page times of a Transformer's head views: the grid of every head redrawn, a head picked."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(f"{url}/?model={model}&text={SENTENCES['de']}")
    page.wait_for_selector("#linked-view .lv-head-canvas", timeout=60_000)
    times: dict[str, list[float]] = {"head grid redrawn": [], "head picked into the heatmap": []}
    for run in range(runs + 1):
        redraw = page.evaluate(REDRAW_HEADS, ("encoder", "decoder", "cross")[run % 3])
        pick = page.evaluate(PICK_HEAD, run % 4)
        assert redraw >= 0 and pick >= 0, "the head grid was not drawn"
        if run:
            times["head grid redrawn"].append(redraw)
            times["head picked into the heatmap"].append(pick)
    page.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--transformer", metavar="MODEL", help="also time a Transformer model's head views")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    times: dict[str, list[float]] = {"translate": [], "select": [], "re-decode": [], "re-decode in page": []}
    with running_app() as (url, _, _), sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#source-text textarea", timeout=60_000)
        load_ms = (time.perf_counter() - started) * 1000
        page.wait_for_timeout(3_000)  # the page's load events have run
        first_screen = [f"bare page load until the text box takes input: {load_ms:.0f} ms; error badges: "
                        f"{error_badges(page)}"]
        page.evaluate(WATCH_EDITS)
        for run in range(args.runs + 1):
            # An unchanged result is not redrawn, so runs alternate between two 15-word sentences.
            page.fill("#source-text textarea", SENTENCE if run % 2 else SENTENCE.replace("yesterday", "today"))
            page.evaluate("() => { const columns = document.querySelector('#linked-view .lv-cols'); "
                          "if (columns) columns.dataset.old = '1'; }")
            started = time.perf_counter()
            page.click("#translate-button")
            page.wait_for_function(LINKED_VIEW_DRAWN, timeout=60_000, polling="raf")
            translate_ms = (time.perf_counter() - started) * 1000
            page.wait_for_timeout(300)  # let the rest of the page settle before the next timing
            if run == 0:
                first_screen += [f"{selector}: {box(page, selector)} inside 1280x720: "
                                 f"{inside(box(page, selector), 1280, 720)}" for selector in FIRST_SCREEN]
                first_screen.append(f"axe-core serious or critical violations: {serious_violations(page)}")
            sent = len(requests)
            row = page.locator('#linked-view .lv-nbest-row[data-hypothesis="2"]').element_handle()
            select_ms = page.evaluate(SELECT, row)
            assert select_ms >= 0, "the n-best click did not update the view"
            assert len(requests) == sent, "selecting an n-best row sent a request"
            page.locator('#linked-view .lv-col[data-column="1"] .lv-out').nth(1).click()
            if run == 0:
                first_screen.append(f"a clicked word's alternatives in view: {in_view(box(page, '#linked-view .lv-alts'), 720)}")
            started = time.perf_counter()
            page.locator("#linked-view .lv-alt:not(.lv-alt-chosen)").first.click()
            page.wait_for_selector("#linked-view .lv-edit", timeout=60_000)
            redecode_ms = (time.perf_counter() - started) * 1000
            in_page = page.evaluate("() => window.__edit")
            if run:  # the first run warms up the model, the page and the browser
                times["translate"].append(translate_ms)
                times["select"].append(select_ms)
                times["re-decode"].append(redecode_ms)
                times["re-decode in page"].append(in_page["drawn"] - in_page["click"])
        heads = head_views(browser, url, args.transformer, args.runs) if args.transformer else {}
        browser.close()
    print(f"en-fr, {len(SENTENCE.split())}-word sentence, greedy + beam 5 (n-best 5), 1280x720, headless Chromium")
    for name, values in times.items():
        print(summary(name, values))
    if heads:
        print(f"{args.transformer}, 15-word German sentence, the head grid of every layer and head")
        for name, values in heads.items():
            print(summary(name, values))
    print("\n".join(first_screen))


if __name__ == "__main__":
    main()
