"""Score Apertium, the rule-based translator, on a data set, as a baseline for a model card.

    apt-get install apertium apertium-eng-spa
    python -m scripts.apertium_baseline --pair eng-spa --data ../shared/data/tatoeba/eng-spa.dev.tsv.gz \
        --split eng-spa.dev [--save checkpoints/en-es]

Runs `apertium -u PAIR` over the distinct sources (leading spaces of its output stripped) and
prints multi-reference BLEU and chrF; --save adds the row to the model's metrics.json "baselines".
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from s2s.card import update_metrics
from s2s.checkpoint import read_metrics
from s2s.data import group_references, read_pairs
from s2s.evaluate import corpus_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", default="eng-spa")
    parser.add_argument("--data", nargs="+", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--save", type=Path, help="model folder whose metrics.json gets the baseline row")
    args = parser.parse_args()
    if shutil.which("apertium") is None:
        parser.error("apertium is not installed (apt-get install apertium apertium-eng-spa)")

    sources, references = group_references(read_pairs(args.data))
    completed = subprocess.run(["apertium", "-u", args.pair], input="\n".join(sources) + "\n",
                               capture_output=True, text=True, check=True)
    outputs = [line.lstrip() for line in completed.stdout.split("\n")[:len(sources)]]
    if len(outputs) != len(sources):
        raise SystemExit(f"apertium returned {len(outputs)} lines for {len(sources)} sources")
    row = {"system": f"Apertium ({args.pair}, rule-based)", "split": args.split, **corpus_scores(outputs, references)}
    print(f"{row['system']} on {args.split} ({len(sources)} sources): BLEU {row['bleu']:.2f}  chrF {row['chrf']:.2f}")
    if args.save:
        others = [b for b in read_metrics(args.save).get("baselines", []) if b["system"] != row["system"]]
        update_metrics(args.save, {"baselines": others + [row]})


if __name__ == "__main__":
    main()
