"""Plotly figures of what the search returned: attention heatmaps and the beam tree.

Every figure is built from a ``Translator`` result dict only; nothing here runs the model.
Labels are escaped: Plotly reads tick labels and hover text as a subset of HTML (a target
piece ``</s>`` would silently vanish), so every piece goes through ``html.escape`` and
Plotly shows the entity as the literal character. Axes are positional (0..n-1 with the
pieces as tick text), because Plotly merges repeated category names.
"""

from __future__ import annotations

import html
import re
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from .tokenizer import BYTE_PIECE, EOS_PIECE, merge_pieces

COLOR_SCALE = "Cividis"  # the linked view's colour-blind-safe scale
WINNER_COLOR = "#d62728"
# Figures sit on the page's own background, light or dark: transparent, with text and grid lines
# in greys that read on both (the server does not know which theme the page shows).
PAGE_STYLE = {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(128,128,128,0.07)",
              "font": {"color": "#7a7a7a"}}
GRID_COLOR = "rgba(128,128,128,0.25)"


def on_page(figure: go.Figure) -> go.Figure:
    """``figure`` styled to read on a light or a dark page (see ``PAGE_STYLE``)."""
    figure.update_layout(**PAGE_STYLE)
    figure.update_xaxes(gridcolor=GRID_COLOR, zerolinecolor=GRID_COLOR)
    figure.update_yaxes(gridcolor=GRID_COLOR, zerolinecolor=GRID_COLOR)
    return figure


def escape(text: str) -> str:
    """Text safe to show in a Plotly label or hover (and in HTML)."""
    return html.escape(text, quote=True)


def piece_label(piece: str) -> str:
    """A readable piece: an ASCII byte piece as its character, other bytes as \\xNN; ▁ kept visible."""
    def byte(match: re.Match) -> str:
        value = int(match.group(1), 16)
        return chr(value) if 0x20 <= value < 0x7F else f"\\x{value:02x}"

    return BYTE_PIECE.sub(byte, piece)


def merge_attention(attention: np.ndarray, source_pieces: Sequence[str], target_pieces: Sequence[str]
                    ) -> tuple[np.ndarray, list[str], list[str]]:
    """Word-level attention [target_words, source_words] from piece-level [T, S].

    Source pieces of a word are summed (the weight the word receives, so rows still sum to 1);
    target pieces of a word are averaged (the typical distribution while writing the word).
    """
    source_words = merge_pieces(source_pieces)
    target_words = merge_pieces(target_pieces)
    summed = np.stack([attention[:, idx].sum(axis=1) for _, idx in source_words], axis=1)
    merged = np.stack([summed[idx].mean(axis=0) for _, idx in target_words], axis=0)
    return merged, [w for w, _ in source_words], [w for w, _ in target_words]


def empty_figure(message: str) -> go.Figure:
    """A blank figure that says why there is nothing to draw."""
    figure = go.Figure()
    figure.add_annotation(text=escape(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                          font={"size": 14, "color": "#666"})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=260,
                         margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return on_page(figure)


def coverage(attention: np.ndarray, source_pieces: Sequence[str], merge_words: bool) -> np.ndarray:
    """Total attention each source piece (or word) received over the whole output: the column
    sums of piece-level attention [T, S]. Under 1 means the source was barely read, which is what
    an under-translated (collapsed) output looks like; this is what the coverage penalty scores."""
    totals = attention.sum(axis=0)
    if merge_words:
        totals = np.array([totals[indices].sum() for _, indices in merge_pieces(source_pieces)])
    return totals


def attention_heatmap(source_pieces: Sequence[str], target_pieces: Sequence[str], attention: Any,
                      title: str, merge_words: bool = False) -> go.Figure:
    """Heatmap of attention [len(target_pieces), len(source_pieces)]: source across, target down,
    with the coverage of each source column (its total attention) as bars underneath.

    The colour scale is fixed to [0, 1] so two heatmaps can be compared by eye.
    """
    if attention is None:
        return empty_figure("This model has no attention: the decoder sees only the final encoder state.")
    piece_weights = np.asarray(attention, dtype=float)
    if merge_words:
        weights, source_labels, target_labels = merge_attention(piece_weights, source_pieces, target_pieces)
    else:
        weights = piece_weights
        source_labels = [piece_label(p) for p in source_pieces]
        target_labels = [piece_label(p) for p in target_pieces]
    source_text = [escape(s) for s in source_labels]
    target_text = [escape(t) for t in target_labels]
    hover = [[[target_text[i], source_text[j]] for j in range(len(source_text))] for i in range(len(target_text))]
    cell, bars, gap = 26, 70, 12
    heat_height = max(160, cell * len(target_text))
    bar_share, gap_share = bars / (heat_height + bars + gap), gap / (heat_height + bars + gap)
    ticks = list(range(len(source_text)))
    totals = coverage(piece_weights, source_pieces, merge_words)
    heatmap = go.Heatmap(
        z=weights, x=ticks, y=list(range(len(target_text))), xaxis="x", yaxis="y",
        zmin=0.0, zmax=1.0, colorscale=COLOR_SCALE, customdata=hover,
        hovertemplate="target: %{customdata[0]}<br>source: %{customdata[1]}<br>weight: %{z:.3f}<extra></extra>",
        colorbar={"title": {"text": "weight"}, "thickness": 12, "len": 0.7, "y": 1.0, "yanchor": "top"},
    )
    bars_trace = go.Bar(
        x=ticks, y=totals, customdata=source_text, showlegend=False, xaxis="x2", yaxis="y2",
        marker={"color": ["#c0392b" if total < 0.5 else "#5b7db1" for total in totals]},
        hovertemplate="source: %{customdata}<br>coverage (total attention): %{y:.2f}<extra></extra>",
    )
    # One layout dict (not make_subplots + update_layout): Plotly validates it once, which is
    # most of the time this figure takes.
    layout = {
        "title": {"text": escape(title) + "<br><sub>source across, output down · bars: coverage = total attention "
                  "per source token (red: under 0.5)</sub>", "font": {"size": 14}, "y": 0.98, "yanchor": "top"},
        "xaxis": {"domain": [0, 1], "anchor": "y", "tickmode": "array", "tickvals": ticks, "ticktext": source_text,
                  "tickangle": -45, "side": "top"},
        "yaxis": {"domain": [bar_share + gap_share, 1], "anchor": "x", "tickmode": "array",
                  "tickvals": list(range(len(target_text))), "ticktext": target_text, "autorange": "reversed"},
        "xaxis2": {"domain": [0, 1], "anchor": "y2", "matches": "x", "showticklabels": False},
        "yaxis2": {"domain": [0, bar_share], "anchor": "x2", "range": [0, 2], "tickvals": [0, 1, 2],
                   "title": {"text": "coverage", "font": {"size": 10}}},
        "shapes": [{"type": "line", "xref": "x2 domain", "x0": 0, "x1": 1, "yref": "y2", "y0": 1, "y1": 1,
                    "line": {"dash": "dot", "color": "#888", "width": 1}}],
        "height": 170 + heat_height + bars + gap, "margin": {"l": 90, "r": 20, "t": 150, "b": 20},
    }
    return on_page(go.Figure(data=[heatmap, bars_trace], layout=layout))


def beam_tree(trace: Sequence[dict[str, Any]] | None, hypotheses: Sequence[dict[str, Any]], title: str) -> go.Figure:
    """The search as a tree: x = step, y = beam slot (best at the top).

    Kept candidates are dots, branches that were pruned later are faded, finished hypotheses
    (</s>) are squares, and the path of the best hypothesis is drawn in red.
    """
    if not trace:
        return empty_figure("No beam trace: choose beam search to see the tree.")
    winner: set[tuple[int, int]] = set()
    winner_end = None
    if hypotheses:
        path = hypotheses[0]["parent_slots"]
        winner = {(step, slot) for step, slot in enumerate(path[1:])}
        winner_end = (len(path) - 1, path[-1], hypotheses[0]["score"])
    has_children = {(step["step"] - 1, node["parent"]) for step in trace for node in step["alive"]}
    has_children |= {(step["step"] - 1, node["parent"]) for step in trace for node in step["finished"]}
    beam = max(len(step["alive"]) for step in trace) or 1

    edges = {"kept": ([], []), "dead": ([], []), "winner": ([], [])}
    nodes: dict[str, dict[str, list]] = {kind: {"x": [], "y": [], "text": [], "hover": []}
                                         for kind in ("kept", "dead", "finished", "winner")}

    def parent_xy(step: int, parent: int) -> tuple[float, float]:
        return (step - 1, parent) if step > 0 else (-1, 0)

    for step in trace:
        t = step["step"]
        for node in step["alive"]:
            on_path = (t, node["slot"]) in winner
            kind = "winner" if on_path else ("kept" if (t, node["slot"]) in has_children else "dead")
            _add_edge(edges[kind], parent_xy(t, node["parent"]), (t, node["slot"]))
            _add_node(nodes[kind], t, node["slot"], node["piece"],
                      f"step {t}, slot {node['slot']}<br>piece: {escape(piece_label(node['piece']))}"
                      f"<br>score: {node['score']:.3f}")
        for rank, node in enumerate(step["finished"]):
            y = beam + rank * 0.5
            is_winner = winner_end is not None and winner_end[0] == t and winner_end[1] == node["parent"] \
                and abs(winner_end[2] - node["score"]) < 1e-6
            _add_edge(edges["winner" if is_winner else "kept"], parent_xy(t, node["parent"]), (t, y))
            _add_node(nodes["winner" if is_winner else "finished"], t, y, EOS_PIECE,
                      f"step {t}: finished<br>score: {node['score']:.3f}"
                      f"<br>normalised: {node['normalized_score']:.3f}")

    figure = go.Figure()
    styles = {"dead": {"color": "#cccccc", "width": 1}, "kept": {"color": "#7f9fbf", "width": 1.5},
              "winner": {"color": WINNER_COLOR, "width": 3}}
    for kind, (xs, ys) in edges.items():
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=styles[kind], hoverinfo="skip",
                                    showlegend=False))
    markers = {
        "dead": ("pruned later", {"color": "#d9d9d9", "size": 9, "symbol": "circle"}),
        "kept": ("kept", {"color": "#4c78a8", "size": 11, "symbol": "circle"}),
        "finished": ("finished (</s>)", {"color": "#54a24b", "size": 12, "symbol": "square"}),
        "winner": ("best hypothesis", {"color": WINNER_COLOR, "size": 13, "symbol": "diamond"}),
    }
    for kind, (name, marker) in markers.items():
        data = nodes[kind]
        figure.add_trace(go.Scatter(
            x=data["x"], y=data["y"], mode="markers+text", marker=marker, name=escape(name),
            text=data["text"], textposition="top center", textfont={"size": 10},
            customdata=data["hover"], hovertemplate="%{customdata}<extra></extra>"))
    figure.add_trace(go.Scatter(x=[-1], y=[0], mode="markers+text", text=["&lt;s&gt;"], textposition="top center",
                                marker={"color": "#333", "size": 10}, showlegend=False, hoverinfo="skip"))
    figure.update_layout(
        title={"text": escape(title), "font": {"size": 14}},
        xaxis={"title": {"text": "step"}, "dtick": 1, "zeroline": False},
        yaxis={"title": {"text": "beam slot (best first)"}, "autorange": "reversed", "zeroline": False},
        height=max(320, 60 * beam + 160), legend={"orientation": "h", "y": -0.15},
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
    )
    return on_page(figure)


def _add_edge(edge: tuple[list, list], start: tuple[float, float], end: tuple[float, float]) -> None:
    edge[0].extend([start[0], end[0], None])
    edge[1].extend([start[1], end[1], None])


def _add_node(data: dict[str, list], x: float, y: float, piece: str, hover: str) -> None:
    data["x"].append(x)
    data["y"].append(y)
    data["text"].append(escape(piece_label(piece)))
    data["hover"].append(hover)


def bleu_by_length_figure(rows_by_model: dict[str, list[dict[str, Any]]], title: str) -> go.Figure:
    """Grouped bars: BLEU per source-length bucket for each model (``evaluate.bleu_by_length`` rows)."""
    def bucket_label(row: dict[str, Any]) -> str:
        count = row["sentences"]
        return f"{row['words']} words<br>({count} sentence{'' if count == 1 else 's'})"

    figure = go.Figure()
    for name, rows in rows_by_model.items():
        figure.add_trace(go.Bar(
            name=escape(name), x=[bucket_label(r) for r in rows],
            y=[r["bleu"] for r in rows], text=[f"{r['bleu']:.1f}" if r["bleu"] is not None else "" for r in rows],
            textposition="outside"))
    figure.update_layout(title={"text": escape(title)}, barmode="group", yaxis={"title": {"text": "BLEU"}},
                         xaxis={"title": {"text": "source length"}}, legend={"orientation": "h", "y": 1.08},
                         width=820, height=460, margin={"l": 60, "r": 20, "t": 80, "b": 60})
    return figure
