"""BLEU by source length for several models on one data set: the figure of why attention matters.

    python -m scripts.bleu_by_length --models checkpoints/en-fr checkpoints/en-fr-noattn \
        --data ../shared/data/tatoeba/eng-fra.dev.tsv.gz --split eng-fra.dev \
        --figure assets/bleu_by_length.png --save

Prints the table; --figure writes a PNG (needs kaleido, requirements-dev.txt); --save stores the
numbers in every model's metrics.json and re-renders its card.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import s2s
from s2s.card import update_metrics
from s2s.data import group_references, read_pairs
from s2s.evaluate import bleu_by_length
from s2s.plots import bleu_by_length_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    parser.add_argument("--data", nargs="+", type=Path, required=True, help="TSV or SRC TGT files")
    parser.add_argument("--split", default="dev", help="name of the data set in the table and figure")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--figure", type=Path, help="PNG to write")
    parser.add_argument("--save", action="store_true", help="store the table in each model's metrics.json")
    args = parser.parse_args()

    sources, references = group_references(read_pairs(args.data))
    rows_by_model = {}
    for folder in args.models:
        results = s2s.load(folder).translate_batch(sources, strategy="beam", beam_size=args.beam_size,
                                                   split_sentences=False)
        outputs = [r["text"] for r in results]
        rows_by_model[folder.name] = bleu_by_length(sources, references, outputs)

    names = list(rows_by_model)
    print(f"{'words':>6} {'sents':>6} " + " ".join(f"{name:>16}" for name in names))
    for i, row in enumerate(rows_by_model[names[0]]):
        print(f"{row['words']:>6} {row['sentences']:>6} " +
              " ".join(f"{rows_by_model[n][i]['bleu'] if rows_by_model[n][i]['bleu'] is not None else '-':>16}"
                       for n in names))
    if args.figure:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        bleu_by_length_figure(rows_by_model, f"BLEU by source length, {args.split}, beam {args.beam_size}") \
            .write_image(str(args.figure), scale=2)
    if args.save:
        table = {"split": args.split, "decoding": f"beam {args.beam_size}", "models": rows_by_model,
                 "figure": str(args.figure) if args.figure else None}
        for folder in args.models:
            update_metrics(folder, {"bleu_by_length": table})


if __name__ == "__main__":
    main()
