"""The README's screenshots of the explorer at 1280x720, taken in headless Chromium on loopback.

    python -m scripts.screenshots [--out assets]

Writes screenshot_bare.png (the page as it opens), screenshot_first_screen.png (a 15-word
sentence translated), screenshot_paragraph.png (three sentences), screenshot_edit.png (a word's
alternatives and an edit re-decoded from one), screenshot_saliency.png (integrated gradients
beside attention) and screenshot_beam16.png (the beam tree at beam 16).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

from scripts.benchmark_browser import CHROMIUM_ARGS
from scripts.local_server import running_app

SENTENCE = "The meeting was postponed until next Thursday afternoon because the manager was sick."
PARAGRAPH = "I went to the market this morning. I bought apples and bread. Then I went home."
LONG = "My grandmother keeps her old letters in a wooden box under the bed in her room."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("assets"))
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with running_app() as (url, _, _), sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})

        def translate(text: str) -> None:
            page.fill("#source-text textarea", text)
            page.press("#source-text textarea", "Enter")
            page.wait_for_function("(text) => { const v = document.querySelector('#linked-view .lv');"
                                   " return v && v.querySelector('.lv-cols') && document.querySelector("
                                   "'#source-text textarea').value === text; }", arg=text, timeout=60_000)
            page.wait_for_timeout(800)

        page.goto(url)
        page.wait_for_selector("#source-text textarea", timeout=60_000)
        page.wait_for_timeout(3_000)
        page.screenshot(path=str(args.out / "screenshot_bare.png"))
        translate(SENTENCE)
        page.screenshot(path=str(args.out / "screenshot_first_screen.png"))
        page.locator('#linked-view .lv-col[data-column="1"] .lv-out').nth(1).click()
        page.locator("#linked-view .lv-alt:not(.lv-alt-chosen)").first.click()
        page.wait_for_selector("#linked-view .lv-edit", timeout=60_000)
        page.screenshot(path=str(args.out / "screenshot_edit.png"))
        page.locator("#linked-view .lv-edit-close").first.click()
        page.locator("#linked-view .lv-saliency-go").first.click()
        page.wait_for_selector("#linked-view .lv-matrices .lv-matrix:nth-child(2) table", timeout=300_000)
        page.screenshot(path=str(args.out / "screenshot_saliency.png"))
        translate(PARAGRAPH)
        page.screenshot(path=str(args.out / "screenshot_paragraph.png"))
        page.goto(f"{url}/?text={LONG.replace(' ', '+')}&beam_size=16&nbest=16")
        page.wait_for_selector("#linked-view .lv-tree", timeout=60_000)
        page.wait_for_timeout(800)
        page.locator("#linked-view .lv-tree-head").scroll_into_view_if_needed()
        page.evaluate("() => window.scrollBy(0, -120)")
        page.screenshot(path=str(args.out / "screenshot_beam16.png"))
        browser.close()


if __name__ == "__main__":
    main()
