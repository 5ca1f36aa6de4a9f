"""Train a toy task as the app's Train tab does, once per attention type, and compare them.

    python scripts/toy_attention_study.py --task dates --attention bahdanau none --minutes 3 \
        --probe "the 4th of March 1998" --checkpoints /tmp/study --figure assets/toy_attention_frames.png

Each run goes through ``s2s.jobs.JobBoard`` with the tab's default sizes (``suggested_configs``),
one after another (two trainings side by side would share the 2 cores). Prints, per attention
type, the dev exact match, BLEU and alignment accuracy of the best model, the step it was reached at
and when alignment accuracy first reached 90%; the figure holds the first and last frames of the
probe's attention animation of the first attention type.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from s2s.jobs import JobBoard  # noqa: E402
from s2s.plots import COLOR_SCALE, escape, merge_attention  # noqa: E402
from s2s.train import PROBE_FILE  # noqa: E402


def train(board: JobBoard, task: str, attention: str, minutes: float, seed: int, probe: str) -> dict:
    job = board.start(f"{task}-{attention}", task=task, model={"attention": attention},
                      train={"max_time": 60.0 * minutes, "seed": seed, "probe": probe}, overwrite=True)
    while job.running():
        time.sleep(5)
    validations = job.validations()
    best = max(validations, key=lambda r: (r["bleu"], -r["step"]))
    aligned = next((r for r in validations if (r.get("alignment_accuracy") or 0) >= 0.9), None)
    learned = next((r for r in validations if r["exact"] >= 95), None)
    return {"attention": attention, "status": job.status()["state"], "best_step": best["step"],
            "exact": best["exact"], "bleu": best["bleu"], "alignment_accuracy": best.get("alignment_accuracy"),
            "aligned_90_at_step": aligned["step"] if aligned else None,
            "learned": f"{learned['step']} ({learned['elapsed']:.0f} s)" if learned else "—",
            "trained_seconds": job.trained_seconds(), "steps": validations[-1]["step"], "probes": job.records(PROBE_FILE)}


def frames_figure(probes: list[dict], path: Path) -> None:
    first, last = probes[0], probes[-1]
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.15, subplot_titles=[
        escape(f"step {p['step']}: {p['text'] or '(empty)'}") for p in (first, last)])
    for column, probe in enumerate((first, last), start=1):
        weights, source, target = merge_attention(np.asarray(probe["attention"]),
                                                  probe["source_pieces"], probe["pieces"])
        figure.add_heatmap(z=weights, zmin=0, zmax=1, colorscale=COLOR_SCALE, showscale=column == 2, row=1, col=column)
        # Positional axes: repeated words ("/" twice) stay apart, and </s> is escaped to show.
        figure.update_xaxes(tickvals=list(range(len(source))), ticktext=[escape(w) for w in source], row=1, col=column)
        figure.update_yaxes(tickvals=list(range(len(target))), ticktext=[escape(w) for w in target],
                            autorange="reversed", row=1, col=column)
    figure.update_layout(width=900, height=360, margin={"l": 60, "r": 20, "t": 50, "b": 60})
    figure.write_image(str(path), scale=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="dates")
    parser.add_argument("--attention", nargs="+", default=["bahdanau", "none"])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--probe", default="", help="the probe sentence (default: the first dev source)")
    parser.add_argument("--checkpoints", type=Path, required=True, help="a scratch checkpoints folder")
    parser.add_argument("--figure", type=Path, help="PNG of the first attention type's first and last frames")
    args = parser.parse_args()
    board = JobBoard(args.checkpoints)
    rows = [train(board, args.task, attention, args.minutes, args.seed, args.probe) for attention in args.attention]
    print("| attention | dev exact match % | dev BLEU | alignment accuracy | best at step | "
          "exact match ≥ 95% at step (trained s) | alignment ≥ 0.9 at step | steps | trained s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        accuracy = "—" if row["alignment_accuracy"] is None else f"{row['alignment_accuracy']:.3f}"
        print(f"| {row['attention']} | {row['exact']:.1f} | {row['bleu']:.1f} | {accuracy} | {row['best_step']} | "
              f"{row['learned']} | {row['aligned_90_at_step'] or '—'} | {row['steps']} | {row['trained_seconds']:.0f} |")
    if args.figure and rows[0]["probes"] and rows[0]["probes"][0].get("attention"):
        frames_figure(rows[0]["probes"], args.figure)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
