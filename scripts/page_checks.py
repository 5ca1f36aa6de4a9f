"""What a person sees in the explorer, read from a Playwright page: Gradio's error badges, where
an element lies against the window, and axe-core's accessibility violations. Shared by the browser
test and ``scripts/benchmark_browser.py``."""

from __future__ import annotations

from typing import Any

FIRST_SCREEN = ("#linked-view .lv-col[data-column='0']", "#linked-view .lv-col[data-column='1']",
                "#linked-view .lv-nbest", "#linked-view .lv-heatmap")


def error_badges(page: Any) -> int:
    """Gradio's red "Error" badges on the page's components."""
    return page.locator(".error:visible").count() + page.get_by_text("Error", exact=True).count()


_BOX_OF_FIRST = """selector => {
  const element = document.querySelector(selector);
  const r = element ? element.getBoundingClientRect() : null;
  return r && (r.width || r.height) ? { x: r.x, y: r.y, width: r.width, height: r.height } : null;
}"""


def box(page: Any, selector: str) -> dict[str, float] | None:
    """The first element's bounding box in the window's coordinates (None when not shown).

    Found and measured in one task of the page, so a redraw between the two (the view redraws
    itself when a late answer, such as a word's training neighbours, arrives) cannot lose it."""
    return page.evaluate(_BOX_OF_FIRST, selector)


def inside(found: dict[str, float] | None, width: int, height: int) -> bool:
    """Whether a box lies wholly inside a width x height window, no scrolling needed."""
    return found is not None and found["x"] >= 0 and found["y"] >= 0 and \
        found["x"] + found["width"] <= width + 1 and found["y"] + found["height"] <= height + 1


def in_view(found: dict[str, float] | None, height: int) -> bool:
    """Whether a box intersects a window of this height."""
    return found is not None and found["y"] < height and found["y"] + found["height"] > 0


def serious_violations(page: Any) -> list[tuple[str, list]]:
    """axe-core's serious and critical violations on the page: (rule, first targets) each."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [(v["id"], [n["target"] for n in v["nodes"][:3]]) for v in violations if v["impact"] in ("serious", "critical")]
