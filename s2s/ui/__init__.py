"""The web explorer (Gradio): one module per view; ``app.py`` only starts it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"  # the page's static files: browser code (.js), styles (.css), examples
