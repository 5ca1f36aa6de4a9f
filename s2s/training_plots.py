"""Plotly figures of a training run, drawn from its logs: the curves (loss, dev scores, alignment
accuracy) and the probe sentence's attention at every validation as an animation.

Inputs are the JSON records of ``train_log.jsonl`` and ``probes.jsonl`` (see ``s2s.train``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plots import COLOR_SCALE, empty_figure, escape, merge_attention, on_page


def training_curves(records: Sequence[dict[str, Any]]) -> go.Figure:
    """Left: training loss (label-smoothed) and dev loss per step. Right: dev BLEU, exact match and
    alignment accuracy (as %) per step."""
    train = [r for r in records if r.get("event") == "train"]
    valid = [r for r in records if r.get("event") == "validation"]
    if not train and not valid:
        return empty_figure("No training steps logged yet.")
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Dev scores (%)"), horizontal_spacing=0.1)
    figure.add_scatter(x=[r["step"] for r in train], y=[r["loss"] for r in train], name="training loss",
                       mode="lines+markers", row=1, col=1)
    figure.add_scatter(x=[r["step"] for r in valid], y=[r["dev_loss"] for r in valid], name="dev loss",
                       mode="lines+markers", row=1, col=1)
    for key, label in (("bleu", "dev BLEU"), ("exact", "exact match"), ("alignment_accuracy", "alignment accuracy")):
        points = [(r["step"], r[key] * (100 if key == "alignment_accuracy" else 1)) for r in valid
                  if r.get(key) is not None]
        if points:
            figure.add_scatter(x=[s for s, _ in points], y=[v for _, v in points], name=label,
                               mode="lines+markers", row=1, col=2)
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(range=[0, 101], row=1, col=2)
    figure.update_layout(height=300, margin={"l": 40, "r": 10, "t": 30, "b": 40},
                         legend={"orientation": "h", "y": -0.25})
    return on_page(figure)


def _frame_data(snapshot: dict[str, Any]) -> tuple[np.ndarray, list[str], list[str]]:
    """Word-level attention [target words, source words] of one probe snapshot, with the words."""
    return merge_attention(np.asarray(snapshot["attention"], dtype=float), snapshot["source_pieces"],
                           snapshot["pieces"])


def attention_animation(probes: Sequence[dict[str, Any]]) -> go.Figure:
    """The probe's word-level attention at every validation, one frame each, with a step slider and
    a play button; each frame's title is the output at that step."""
    snapshots = [p for p in probes if p.get("attention") and p.get("pieces")]
    if not snapshots:
        return empty_figure("No probe snapshot yet: one is recorded at every validation "
                            "(a model without attention has none to show).")
    frames = []
    for snapshot in snapshots:
        weights, source_words, target_words = _frame_data(snapshot)
        frames.append(go.Frame(
            name=str(snapshot["step"]),
            data=[go.Heatmap(z=weights, x=list(range(len(source_words))), y=list(range(len(target_words))),
                             zmin=0.0, zmax=1.0, colorscale=COLOR_SCALE,
                             customdata=[[f"{escape(t)} ← {escape(s)}" for s in source_words] for t in target_words],
                             hovertemplate="%{customdata}: %{z:.2f}<extra></extra>")],
            layout=go.Layout(
                title={"text": f"step {snapshot['step']}: {escape(snapshot['text']) or '(empty output)'}"},
                yaxis={"tickvals": list(range(len(target_words))), "ticktext": [escape(w) for w in target_words],
                       "range": [len(target_words) - 0.5, -0.5]},
                xaxis={"tickvals": list(range(len(source_words))), "ticktext": [escape(w) for w in source_words]})))
    figure = go.Figure(data=frames[-1].data, layout=frames[-1].layout, frames=frames)
    figure.update_layout(
        height=360, margin={"l": 80, "r": 10, "t": 40, "b": 90},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0, "y": -0.18, "xanchor": "left",
                      "buttons": [{"label": "▶ play", "method": "animate",
                                   "args": [None, {"frame": {"duration": 400, "redraw": True}}]}]}],
        sliders=[{"active": len(frames) - 1, "x": 0.12, "len": 0.88, "y": -0.1,
                  "currentvalue": {"prefix": "step ", "xanchor": "right"},
                  "steps": [{"label": frame.name, "method": "animate",
                             "args": [[frame.name], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]}
                            for frame in frames]}])
    return on_page(figure)
