"""The app as a person and a program use it: a real server on 127.0.0.1, headless Chromium,
and 20 concurrent API calls through gradio_client. Uses the shipped checkpoints."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from scripts.local_server import RunningApp, running_app
from scripts.page_checks import FIRST_SCREEN, box, error_badges, in_view, inside, serious_violations

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@contextlib.contextmanager
def translated(server: str, text: str, height: int = 900) -> Iterator[Any]:
    """Headless Chromium on the explorer (1280 x ``height``) with ``text`` translated and the
    linked view drawn; yields the page. Screenshots go to tests/artifacts/."""
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": height})
            page.goto(server)
            page.wait_for_selector("#source-text textarea", timeout=60_000)
            page.fill("#source-text textarea", text)
            page.click("#translate-button")
            page.wait_for_selector("#linked-view .lv-col", timeout=60_000)
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium, closed after the block."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watched_page(browser: Any, height: int) -> tuple[Any, list[str]]:
    """A 1280 x ``height`` page and the list its uncaught script errors are added to."""
    page = browser.new_page(viewport={"width": 1280, "height": height})
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    return page, failures


@pytest.fixture(scope="module")
def app() -> Iterator[RunningApp]:
    with running_app() as started:
        yield started


@pytest.fixture(scope="module")
def server(app: RunningApp) -> str:
    return app.url


SENTENCE = "The meeting was postponed until next Thursday afternoon because the manager was sick."


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_the_first_screen_from_a_bare_page_load(app: RunningApp) -> None:
    # A class's first minute at 1280 x 720: the bare page has no error, Enter translates, and the
    # outputs, the n-best list and the whole heatmap are on screen; a click's answer appears in view.
    playwright = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("axe_playwright_python.sync_playwright")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(app.url)
            page.wait_for_selector("#source-text textarea", timeout=60_000)
            page.wait_for_timeout(3_000)  # the page's load events (restore a shared link, the Train tab) have run
            page.screenshot(path=str(ARTIFACTS / "first_screen_bare.png"))
            assert error_badges(page) == 0
            page.fill("#source-text textarea", SENTENCE)
            page.press("#source-text textarea", "Enter")  # Enter translates; it adds no newline
            page.wait_for_selector("#linked-view .lv-col", timeout=60_000)
            assert page.input_value("#source-text textarea") == SENTENCE
            page.screenshot(path=str(ARTIFACTS / "first_screen_translated.png"))
            for selector in FIRST_SCREEN:
                assert inside(box(page, selector), 1280, 720), (selector, box(page, selector))
            assert "▁" not in page.locator("#linked-view .lv-main").inner_text()  # words, never pieces
            assert not serious_violations(page), serious_violations(page)
            # Keyboard: Enter on a word opens its alternatives with the focus in them; Escape closes.
            page.locator("#linked-view .lv-col[data-column='1'] .lv-out").first.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("Enter")
            page.wait_for_selector("#linked-view .lv-alts", timeout=10_000)
            assert page.evaluate("document.activeElement.classList.contains('lv-alt')")
            assert in_view(box(page, "#linked-view .lv-alts"), 720)
            assert "word 2" in page.locator("#linked-view .lv-alts-head").first.inner_text()
            page.keyboard.press("Escape")
            page.wait_for_selector("#linked-view .lv-alts", state="detached", timeout=10_000)
            assert page.evaluate("document.activeElement.dataset.token") == "1"
            # A click's answer: the edit re-decoded from an alternative is in view without scrolling.
            page.locator("#linked-view .lv-col[data-column='1'] .lv-out").nth(1).click()
            page.locator("#linked-view .lv-alt:not(.lv-alt-chosen)").first.click()
            page.wait_for_selector("#linked-view .lv-edit", timeout=60_000)
            assert in_view(box(page, "#linked-view .lv-edit"), 720)
            page.screenshot(path=str(ARTIFACTS / "first_screen_edit.png"))
            assert error_badges(page) == 0
            for width, height in ((1920, 1080), (800, 900)):
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(300)
                assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing off to the side
                for selector in ("#linked-view .lv-col[data-column='1']", "#linked-view .lv-heatmap"):
                    assert inside(box(page, selector), width, 10_000), (width, selector, box(page, selector))
            page.screenshot(path=str(ARTIFACTS / "first_screen_narrow.png"), full_page=True)
            # Every other load path: each tab, and a model without attention, without an error.
            page.set_viewport_size({"width": 1280, "height": 720})
            for tab in ("Compare two models", "Train your own", "Explore"):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(800)
                assert error_badges(page) == 0, tab
            page.locator("#model-picker input").click()
            page.get_by_role("option", name="en-fr-noattn").click()
            page.fill("#source-text textarea", "Where is the station?")
            page.press("#source-text textarea", "Enter")
            page.wait_for_function("document.querySelector('#linked-view .lv') && document.querySelector("
                                   "'#linked-view .lv').innerText.includes('no attention')", timeout=60_000)
            assert error_badges(page) == 0
        finally:
            browser.close()
    assert "Traceback" not in app.log(), app.log()[-3000:]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_translates_with_beam_5_and_sees_the_heatmap(server: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server)
        page.wait_for_selector("#source-text textarea", timeout=60_000)
        page.locator("#classic .label-wrap").click()  # open the classic views with the Plotly figures
        page.fill("#source-text textarea", "The cat is sleeping on the red chair.")
        page.fill("#beam-size input[type=number]", "5")
        page.press("#beam-size input[type=number]", "Enter")
        page.click("#translate-button")
        page.wait_for_function("document.querySelector('#beam-output textarea').value.trim().length > 0",
                               timeout=60_000)
        page.wait_for_selector("#beam-heatmap .main-svg .heatmaplayer image, #beam-heatmap .main-svg .hm",
                               timeout=60_000)
        page.wait_for_selector("#beam-tree .main-svg .scatterlayer", timeout=60_000)
        translation = page.input_value("#beam-output textarea")
        page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
        assert translation.strip()
        assert page.locator("#nbest").get_by_text(translation.strip()[:20]).count() >= 1
        assert page.locator("#beam-heatmap .ytick").count() >= 2  # one tick per output piece
        assert not page.locator("#sentence-picker").is_visible()  # one sentence: no picker
        page.click("#export-button")
        page.wait_for_selector("#export-file a", timeout=60_000)
        assert ".json" in page.locator("#export-file").inner_text()  # the file name, then its size
        browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_translates_a_paragraph_and_picks_a_sentence(server: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paragraph = "I went to the market this morning. I bought apples and bread. Then I went home."
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server)
        page.wait_for_selector("#source-text textarea", timeout=60_000)
        page.locator("#classic .label-wrap").click()
        page.fill("#source-text textarea", paragraph)
        page.click("#translate-button")
        page.wait_for_selector("#sentence-picker label", timeout=60_000)
        choices = page.locator("#sentence-picker label")
        assert choices.count() == 3
        translation = page.input_value("#beam-output textarea")
        assert translation.count(".") >= 3  # all three sentences translated
        ticks = lambda: page.eval_on_selector_all("#beam-heatmap .xtick", "ts => ts.map(t => t.textContent)")  # noqa: E731
        first_ticks = ticks()
        # The whole translation is shown above the views, each sentence a button that selects it.
        assert page.locator("#linked-view .lv-sentence").count() == 3
        page.locator("#linked-view .lv-sentence").nth(2).click()
        page.wait_for_function(
            "document.querySelector('#verdict').innerText.startsWith('Sentence 3 of 3')", timeout=60_000)
        # Plotly redraws the figure in steps: wait for the third sentence's word-level labels ("home",
        # as in the linked view) rather than for any change (a half-drawn axis is a change too).
        page.wait_for_function("Array.from(document.querySelectorAll('#beam-heatmap .xtick'))"
                               ".some(t => t.textContent === 'home')", timeout=60_000)
        assert ticks() != first_ticks
        page.screenshot(path=str(ARTIFACTS / "paragraph.png"), full_page=True)
        browser.close()


def test_model_files_and_other_paths_are_not_served(server: str) -> None:
    for path in ("checkpoints/en-fr/model.safetensors", "app.py", "/etc/passwd"):
        for route in ("/gradio_api/file=", "/file="):
            request = urllib.request.Request(server + route + path)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            assert status in (403, 404), (route, path, status)


def test_a_full_queue_says_so_and_the_server_keeps_serving() -> None:
    from gradio_client import Client

    with running_app("--queue-size", "2", "--max-batch", "1") as (url, _, _):
        def call(number: int) -> str:
            try:
                Client(url, verbose=False).predict(model="en-fr", text=f"I have {number} cats.", beam_size=16,
                                                   nbest=16, api_name="/translate")
                return "ok"
            except Exception as error:  # noqa: BLE001 - the client's error carries the server's message
                return str(error)

        with ThreadPoolExecutor(max_workers=24) as pool:
            outcomes = list(pool.map(call, range(24)))
        assert "ok" in outcomes
        assert any("queue is full" in outcome.lower() for outcome in outcomes), outcomes
        assert call(99) == "ok"


def test_twenty_concurrent_api_requests_all_succeed(server: str) -> None:
    from gradio_client import Client

    client = Client(server, verbose=False)
    sentences = [f"I have {n} cats and a dog." for n in range(20)]

    def call(sentence: str) -> dict:
        return Client(server, verbose=False).predict(model="en-fr", text=sentence, strategy="beam", beam_size=5,
                                                     api_name="/translate")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, sentences))
    assert [r["source"] for r in results] == sentences
    assert all(r["text"] and r["sentences"][0]["hypotheses"] for r in results)
    with pytest.raises(Exception, match="beam_size"):
        client.predict(model="en-fr", text="hi", beam_size=0, api_name="/translate")


def test_a_login_protects_the_page_and_the_api(tmp_path: Path) -> None:
    logins = tmp_path / "logins.txt"
    logins.write_text("# one per line\nteacher:s3cret\n")
    with running_app("--auth-file", str(logins)) as (url, _, _):
        for path in ("/config", "/gradio_api/info"):
            try:
                with urllib.request.urlopen(url + path, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            assert status == 401, (path, status)
        from gradio_client import Client

        client = Client(url, auth=("teacher", "s3cret"), verbose=False)
        assert client.predict(model="en-fr", text="Hello.", api_name="/translate")["text"]


def test_a_malformed_login_file_is_refused_with_a_message(tmp_path: Path) -> None:
    logins = tmp_path / "logins.txt"
    logins.write_text("teacher-without-password\n")
    result = subprocess.run([sys.executable, "app.py", "--auth-file", str(logins)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "user:password" in result.stderr


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_clicks_a_word_picks_an_alternative_and_sees_the_edited_output(server: str) -> None:
    with translated(server, "The cat is sleeping on the red chair.", height=720) as page:
        beam = page.locator('#linked-view .lv-col[data-column="1"]')
        # Selecting an n-best row changes every view at once, in the page: the column's score line,
        # its output strip and the heatmap's rows.
        rows = beam.locator(".lv-nbest-row")
        assert rows.count() == 5
        second_text = rows.nth(1).locator(".lv-nbest-text").inner_text()
        rows.nth(1).click()
        assert "#2" in beam.locator("h2").inner_text()
        assert "".join(beam.locator(".lv-out .lv-word").all_inner_texts()).replace(" ", "") in \
            second_text.replace(" ", "") + "</s>"
        assert rows.nth(1).get_attribute("class").count("lv-selected") == 1
        rows.nth(0).click()
        # Hovering an output word lights the source words by their attention to it.
        beam.locator(".lv-out").nth(1).hover()
        assert page.locator("#linked-view .lv-src .lv-p").count() >= 3
        # Clicking a word opens its alternatives; picking one re-decodes with it forced.
        beam.locator(".lv-out").nth(1).click()
        alternatives = page.locator("#linked-view .lv-alt")
        assert alternatives.count() == 10
        assert page.locator("#linked-view .lv-alt-chosen").count() == 1
        picked = page.locator("#linked-view .lv-alt:not(.lv-alt-chosen)").first
        picked_label = picked.locator(".lv-alt-label").inner_text().strip()
        picked.click()
        page.wait_for_selector("#linked-view .lv-edit", timeout=60_000)
        edit = page.locator("#linked-view .lv-edit").first
        assert "Score" in edit.inner_text() and "original" in edit.inner_text()
        forced = edit.locator(".lv-forced .lv-word").all_inner_texts()
        assert len(forced) >= 2 and picked_label in "".join(forced)
        page.screenshot(path=str(ARTIFACTS / "linked_view.png"), full_page=True)
        # The step slider grows the beam tree to that step, with the candidates pruned there faded.
        whole_tree = page.locator("#linked-view .lv-node").count()
        page.locator("#linked-view .lv-step-range").fill("0")
        assert 1 < page.locator("#linked-view .lv-node").count() < whole_tree
        assert page.locator("#linked-view .lv-node-pruned").count() >= 1
        assert "word 1 of" in page.locator("#linked-view .lv-step-label").inner_text()
        # Clicking where the second-best hypothesis ends selects it in every view.
        second_score = rows.nth(1).locator(".lv-nbest-score").inner_text()
        page.locator("#linked-view .lv-pieces").check()  # switching to pieces and back clears the pinned
        page.locator("#linked-view .lv-pieces").uncheck()  # step: the whole tree again
        ends = page.locator("#linked-view .lv-node-finished")
        for index in range(ends.count()):
            if second_score in ends.nth(index).locator("title").text_content():
                ends.nth(index).locator("rect").click()
                break
        assert "#2" in beam.locator("h2").inner_text()
        with page.expect_download() as download:
            page.click("#linked-view .lv-download")
        assert download.value.suggested_filename == "s2s-en-fr-The-cat-is-sleeping-on-the-red-chair-beam-tree.svg"
        assert download.value.path().read_text(encoding="utf-8").startswith("<svg")
        # A typed word works the same way.
        page.fill("#linked-view .lv-typed input", "chien")
        page.click("#linked-view .lv-typed button")
        page.wait_for_function("document.querySelectorAll('#linked-view .lv-edit').length >= 2", timeout=60_000)
        assert "chien" in page.locator("#linked-view .lv-edit").first.inner_text()


TREE_PATH_ROWS = """() => [...document.querySelectorAll('#linked-view .lv-node-path')].map((node) => {
    const mark = node.querySelector('circle, rect');
    return mark.tagName === 'circle' ? +mark.getAttribute('cy') : +mark.getAttribute('y') + 4; })"""


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_at_beam_16_on_a_long_sentence_the_best_hypothesis_runs_along_the_tree_s_top_row(server: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    text = ("When I was a child my grandmother used to tell us long stories about the old house near the river "
            "where she grew up.")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{server}/?{urllib.parse.urlencode({'text': text, 'beam_size': 16, 'nbest': 16})}")
        page.wait_for_selector("#linked-view .lv-node-path.lv-node-finished", timeout=60_000)
        rows = page.evaluate(TREE_PATH_ROWS)  # <s>, every piece of hypothesis #1, and its end
        assert len(rows) > 20 and len(set(rows)) == 1
        assert rows[0] == min(float(y) for y in page.locator("#linked-view .lv-node circle").evaluate_all(
            "(marks) => marks.map((m) => m.getAttribute('cy'))"))
        # Selecting a lower n-best row scrolls the tree to where that hypothesis ends, on its own row.
        nbest = page.locator('#linked-view .lv-col[data-column="1"] .lv-nbest-row')
        assert nbest.count() == 16
        nbest.last.click()
        end = page.evaluate(TREE_PATH_ROWS)[-1]
        top, height = page.locator("#linked-view .lv-tree-wrap").evaluate("(w) => [w.scrollTop, w.clientHeight]")
        assert top <= end <= top + height
        browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_shared_link_restores_the_view_and_copy_link_writes_one(server: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{server}/?text=The+dog+is+sleeping.&beam_size=3&nbest=3&sel=1")
        page.wait_for_selector("#linked-view .lv-col", timeout=60_000)
        assert page.input_value("#source-text textarea") == "The dog is sleeping."
        assert page.input_value("#beam-size input[type=number]") == "3"
        beam = page.locator('#linked-view .lv-col[data-column="1"]')
        assert beam.locator(".lv-nbest-row").count() == 3 and "#2" in beam.locator("h2").inner_text()
        page.fill("#source-text textarea", "The bird sings.")
        page.click("#share-button")
        page.wait_for_function("window.location.search.includes('bird')", timeout=10_000)
        assert "beam_size=3" in page.url and "alpha" not in page.url  # defaults are left out
        browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_steers_the_attention_of_one_step_and_sees_the_output_follow(server: str) -> None:
    with translated(server, "The cat is sleeping on the red sofa.") as page:
        greedy = page.locator('#linked-view .lv-col[data-column="0"]')
        assert page.locator("#linked-view .lv-head-pick, #linked-view .lv-heads").count() == 0  # an RNN: no heads
        greedy.locator(".lv-out").nth(2).click()  # pin the third output word ("dort")
        assert page.locator("#linked-view .lv-steer-go").is_disabled()
        page.locator("#linked-view .lv-src").nth(5).click()  # "the": look there instead
        assert page.locator("#linked-view .lv-src.lv-steer-on").count() == 1
        page.click("#linked-view .lv-steer-go")
        page.wait_for_selector("#linked-view .lv-edit", timeout=60_000)
        edit = page.locator("#linked-view .lv-edit").first
        assert "looked only at “the” at word 3" in edit.inner_text()
        # The edit's heatmap marks the steered row, whose weight sits wholly on "the".
        row = edit.locator(".lv-heatmap tr.lv-row-focus td")
        assert row.nth(5).get_attribute("title").endswith("1.000")
        assert edit.locator(".lv-forced").count() == 2  # the two words before the step were kept
        # Or scale the model's own weights: looking away from "sleeping" at that step.
        greedy.locator(".lv-out").nth(2).click()
        greedy.locator(".lv-out").nth(2).click()  # pinned again: a fresh choice
        page.locator("#linked-view .lv-src").nth(3).click()
        page.select_option("#linked-view .lv-steer-mode", "remove")
        page.click("#linked-view .lv-steer-go")
        page.wait_for_function("document.querySelectorAll('#linked-view .lv-edit').length >= 2", timeout=60_000)
        scaled = page.locator("#linked-view .lv-edit").first
        assert "looked away from “sleeping” at word 3" in scaled.inner_text()
        assert scaled.locator(".lv-heatmap tr.lv-row-focus td").nth(3).get_attribute("title").endswith("0.000")
        page.screenshot(path=str(ARTIFACTS / "steering.png"), full_page=True)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_puts_saliency_beside_the_attention(server: str) -> None:
    with translated(server, "The cat is sleeping on the red sofa.") as page:
        page.click('#linked-view .lv-saliency-go[data-method="input_x_gradient"]')
        page.wait_for_selector("#linked-view .lv-matrices .lv-matrix:nth-child(2) .lv-heatmap", timeout=60_000)
        tables = page.locator("#linked-view .lv-matrices .lv-heatmap")
        assert tables.count() == 2  # attention and saliency, one beside the other
        assert tables.nth(0).locator("tbody tr").count() == tables.nth(1).locator("tbody tr").count()
        assert "most relevant source piece is also the most attended" in page.locator("#linked-view .lv-matrices").inner_text()
        page.screenshot(path=str(ARTIFACTS / "saliency.png"), full_page=True)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_scores_their_own_translation(server: str) -> None:
    with translated(server, "The cat is sleeping on the red sofa.") as page:
        page.fill("#linked-view .lv-score input", "Le chat dort sur le divan rouge.")
        page.click("#linked-view .lv-score button")
        page.wait_for_selector("#linked-view .lv-scored", timeout=60_000)
        card = page.locator("#linked-view .lv-scored")
        assert "the model prefers its own" in card.inner_text()
        assert "divan" in "".join(card.locator(".lv-word").all_inner_texts())
        assert card.locator(".lv-heatmap").count() == 1


def test_the_what_if_endpoints_answer_with_a_model_and_a_text_and_report_errors(server: str) -> None:
    from gradio_client import Client

    client = Client(server, verbose=False)
    text = "The cat is sleeping on the red sofa."
    alternatives = client.predict(model="en-fr", text=text, api_name="/alternatives")
    assert len(alternatives["alternatives"]) == len(alternatives["pieces"])
    redecoded = client.predict(model="en-fr", text=text, api_name="/redecode")
    assert redecoded["hypotheses"][0]["ids"][1] == alternatives["alternatives"][1][1]["id"]
    overridden = client.predict(model="en-fr", text=text, step=2, api_name="/override")
    assert overridden["steered"] == [2]
    saliency = client.predict(model="en-fr", text=text, method="input_x_gradient", api_name="/saliency")
    assert len(saliency["relevance"]) == len(alternatives["pieces"])
    scored = client.predict(model="en-fr", text=text, target=alternatives["text"], api_name="/score")
    assert scored["hypotheses"][0]["text"] == alternatives["text"]
    for endpoint, options, message in [("/score", {}, "Type a translation"),
                                       ("/override", {"step": 99}, "step must be"),
                                       ("/override", {"weights": [1.0]}, "weights"),
                                       ("/saliency", {"model": "en-fr-noattn", "method": "lime"}, "method")]:
        with pytest.raises(Exception, match=message):
            client.predict(**({"model": "en-fr", "text": text} | options), api_name=endpoint)
    assert client.predict(model="en-fr", text=text, api_name="/alternatives")["text"]  # still serving


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_trains_a_toy_model_watches_it_learn_and_finds_it_in_the_picker(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(ROOT / "checkpoints" / "en-fr", checkpoints / "en-fr")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_app(env={"S2S_CHECKPOINTS": str(checkpoints)}) as (url, _, _), \
            playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Train your own").click()
            page.fill("#train-name textarea, #train-name input", "my-dates")
            page.click("#train-start")
            page.wait_for_function("document.querySelector('#train-status').innerText.includes('running')",
                                   timeout=60_000)
            # The loss curve appears and grows while the job runs, with no click.
            page.wait_for_selector("#train-curves .scatterlayer .trace", timeout=120_000)
            page.wait_for_function("document.querySelector('#train-progress textarea').value.includes('best dev')",
                                   timeout=120_000)
            page.wait_for_selector("#train-animation .main-svg .heatmaplayer image, #train-animation .hm",
                                   timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "train_tab.png"), full_page=True)
            # Closing the page does not stop the job; a page opened later shows it, still running.
            page.close()
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Train your own").click()
            page.wait_for_function("document.querySelector('#train-status').innerText.includes('my-dates')"
                                   " && document.querySelector('#train-status').innerText.includes('running')",
                                   timeout=60_000)
            page.wait_for_selector("#train-curves .scatterlayer .trace", timeout=60_000)
            page.click("#train-stop")
            page.wait_for_function("document.querySelector('#train-status').innerText.includes('stopped')",
                                   timeout=120_000)
            assert "model picker" in page.inner_text("#train-status")
            page.get_by_role("tab", name="Explore").click()
            page.click("#model-picker input")
            assert page.get_by_role("option", name="my-dates").is_visible()
        finally:
            browser.close()
    assert (checkpoints / "my-dates" / "model.safetensors").exists()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_downloads_the_attention_heatmap_as_png_and_svg(server: str) -> None:
    with translated(server, "The cat is sleeping.", height=720) as page:
        for format, magic in (("png", b"\x89PNG"), ("svg", b"<svg")):
            with page.expect_download() as download:
                page.click(f'#linked-view .lv-export[data-format="{format}"]')
            name = download.value.suggested_filename
            assert name.startswith("s2s-en-fr-The-cat-is-sleeping") and name.endswith(f"-attention.{format}")
            content = Path(download.value.path()).read_bytes()
            assert content.startswith(magic) and len(content) > 1000
            if format == "svg":  # a standalone figure: every output and source word, and the numbers
                text = content.decode()
                assert "sleeping" in text and "&lt;/s&gt;" in text and text.count("<rect") > 10
                (ARTIFACTS / name).write_bytes(content)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_compares_two_models_in_their_own_tab(server: str) -> None:
    with translated(server, "The cat is sleeping.", height=720) as page:
        # On a 1280x720 projector the outputs of the linked view are on the first screen.
        outputs = box(page, "#linked-view .lv-cols")
        assert outputs and outputs["y"] + 60 < 720, outputs
        page.screenshot(path=str(ARTIFACTS / "first_screen.png"))
        page.get_by_role("tab", name="Compare two models").click()
        assert page.input_value("#compare-text textarea") == "The cat is sleeping."  # follows Explore's text
        page.click("#compare-button")
        page.wait_for_function("document.querySelector('#compare-b-output textarea').value.trim().length > 0",
                               timeout=60_000)
        assert page.input_value("#compare-a-output textarea").strip()
        page.wait_for_selector("#compare-a-heatmap .main-svg .heatmaplayer image, #compare-a-heatmap .hm",
                               timeout=60_000)
        page.wait_for_selector("#compare-b-heatmap .main-svg", timeout=60_000)  # no attention: a message
        page.screenshot(path=str(ARTIFACTS / "compare_tab.png"), full_page=True)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_picks_a_transformer_head_and_switches_heads_off(server: str) -> None:
    config = json.loads((ROOT / "checkpoints" / "de-en-transformer" / "config.json").read_text())
    layers, heads = config["decoder_layers"], config["attention_heads"]
    last = layers - 1  # the picker's and the grid's layer index of the last cross-attention layer
    with chromium() as browser:
        page, failures = watched_page(browser, 900)
        page.goto(f"{server}/?model=de-en-transformer&text=Ein+Hund+rennt+durch+den+Park.")
        page.wait_for_selector("#linked-view .lv-head-canvas", timeout=60_000)
        assert page.locator("#linked-view .lv-head-canvas").count() == layers * heads  # every layer's every head
        assert page.input_value("#linked-view .lv-head-pick") == f"{last}.-1"  # the last layer's average
        counted = ", ".join(f"{n} {side} layer{'' if n == 1 else 's'}"
                            for n, side in ((config["encoder_layers"], "encoder"), (layers, "decoder")))
        assert f"Every head ({counted}, {heads} heads each)" in page.inner_text("#linked-view .lv-heads summary")
        page.select_option("#linked-view .lv-head-pick", "0.1")
        heatmap = page.locator("#linked-view .lv-right .lv-heatmap").first
        assert "(layer 1, head 2)" in heatmap.get_attribute("aria-label")
        page.locator("#linked-view .lv-head-canvas").nth(last * heads + 2).click()  # last layer, head 3 enlarged
        assert page.input_value("#linked-view .lv-head-pick") == f"{last}.2"
        page.locator("#linked-view .lv-head-canvas").nth(last * heads + 2).hover()
        assert f"layer {layers}, head 3" in page.inner_text("#linked-view .lv-head-hover")
        for index in range(last * heads, layers * heads):  # every head of the last layer's cross-attention off
            page.locator("#linked-view .lv-head-off-box").nth(index).check()
        page.click("#linked-view .lv-heads-go")
        page.wait_for_selector("#linked-view .lv-edit", timeout=60_000)
        assert f"heads off: cross layer {layers}, head 1" in page.inner_text("#linked-view .lv-edit")
        page.locator("#linked-view .lv-head-kind[value=encoder]").check()
        for control in (".lv-head-kind", ".lv-head-off-box"):  # drawn natively: a person sees what is picked
            assert page.eval_on_selector(f"#linked-view {control}", "e => getComputedStyle(e).appearance") != "none"
        page.locator("#linked-view .lv-head-canvas").first.click()
        assert page.locator("#linked-view .lv-heads .lv-heatmap").count() == 1  # an encoder head enlarged
        page.click("#share-button")
        page.wait_for_function(f"window.location.search.includes('head={last}.2')", timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "heads.png"), full_page=True)
        assert error_badges(page) == 0 and not failures, failures


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (CI installs it)")
def test_a_person_asks_where_the_model_learned_a_word_and_shares_the_answer(server: str) -> None:
    with chromium() as browser:
        page, failures = watched_page(browser, 720)
        page.goto(f"{server}/?text=The+young+doctor+is+my+brother.")
        page.wait_for_selector("#linked-view .lv-col", timeout=60_000)
        page.locator('#linked-view .lv-out[data-column="1"]').nth(1).click()  # "jeune", the beam's 2nd word
        page.wait_for_selector("#linked-view .lv-nb-list li", timeout=60_000)
        panel = page.locator("#linked-view .lv-neighbours")
        assert panel.locator(".lv-nb-list li").count() == 10
        assert panel.locator(".lv-nb-target mark").count() == 10  # the matching word marked in each translation
        assert panel.locator(".lv-nb-map .lv-nb-dot").count() == 10 and panel.locator(".lv-nb-query").count() == 1
        assert "say “jeune” there" in panel.inner_text()
        page.keyboard.press("Escape")
        page.locator("#linked-view .lv-out").nth(0).focus()
        page.keyboard.press("Escape")  # unpinned: the output word's panel closes
        assert page.locator("#linked-view .lv-neighbours").count() == 0
        page.locator("#linked-view .lv-src").nth(2).click()  # "doctor"
        page.wait_for_selector("#linked-view .lv-nb-list li", timeout=60_000)
        assert "encoder state" in page.inner_text("#linked-view .lv-neighbours")
        assert "doctor" in page.locator("#linked-view .lv-nb-source mark").first.inner_text().lower()
        page.screenshot(path=str(ARTIFACTS / "neighbours.png"), full_page=False)
        page.click("#share-button")
        page.wait_for_function("window.location.search.includes('nb=src.2')", timeout=10_000)
        shared = browser.new_page(viewport={"width": 1280, "height": 720})
        shared.goto(page.url)
        shared.wait_for_selector("#linked-view .lv-nb-list li", timeout=60_000)
        assert "encoder state" in shared.inner_text("#linked-view .lv-neighbours")
        assert error_badges(page) == 0 and error_badges(shared) == 0 and not failures, failures


def test_libretranslate_clients_work_unchanged(server: str) -> None:
    # libretranslatepy, as browser extensions, CAT tools and chat bots use the API (form-encoded).
    libretranslatepy = pytest.importorskip("libretranslatepy")
    client = libretranslatepy.LibreTranslateAPI(server)
    assert client.translate("Where is the station?", "en", "fr").strip()
    assert client.translate("Ein Mann fährt Fahrrad.", "de", "en").strip()
    languages = {language["code"]: language["targets"] for language in client.languages()}
    assert {"fr", "es"} <= set(languages["en"]) and "en" in languages["de"]
    rest = __import__("httpx").post(f"{server}/v1/translate", json={"text": ["Hello.", "Thank you."]}, timeout=60)
    assert rest.status_code == 200 and len(rest.json()) == 2
