"""How often attention and saliency agree, by source length: the study behind the README's figure.

    python -m scripts.attention_vs_saliency --model checkpoints/en-fr \
        --data ../shared/data/tatoeba/eng-fra.dev.tsv.gz --figure assets/attention_vs_saliency.png

For every distinct source of the data set: its beam-5 output, then ``Translator.saliency`` of
that output (integrated gradients, 32 steps, unless told otherwise) beside its attention. Per
bucket of source words: the share of output pieces whose most salient source piece is also the
most attended one (argmax agreement), and the mean of Spearman's rank correlation of the rows.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import plotly.graph_objects as go

import s2s
from s2s.data import group_references, read_pairs
from s2s.saliency import METHODS

BUCKETS = [(1, 5), (6, 10), (11, 15), (16, 1000)]


def bucket_of(words: int) -> str:
    low, high = next((low, high) for low, high in BUCKETS if words <= high)
    return f"{low}-{high}" if high < 1000 else f"{low}+"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", nargs="+", type=Path, required=True)
    parser.add_argument("--method", choices=METHODS, default="integrated_gradients")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="only the first N sources (0 = all)")
    parser.add_argument("--figure", type=Path, help="PNG to write (needs kaleido, requirements-dev.txt)")
    args = parser.parse_args()
    translator = s2s.load(args.model)
    sources, _ = group_references(read_pairs(args.data))
    sources = sources[:args.limit] if args.limit else sources
    agree: dict[str, list[float]] = {}
    correlation: dict[str, list[float]] = {}
    started = time.perf_counter()
    results = translator.translate_batch(sources, strategy="beam", beam_size=5, split_sentences=False)
    for number, (source, result) in enumerate(zip(sources, results), start=1):
        (sentence,) = result["sentences"]
        saliency = translator.saliency(source, sentence["hypotheses"][0]["ids"], args.method, args.steps)
        bucket = bucket_of(len(source.split()))
        pieces = len(saliency["relevance"])
        agree.setdefault(bucket, []).extend([saliency["agreement"]] * pieces)  # weighted by output pieces
        correlation.setdefault(bucket, []).extend(saliency["rank_correlation"])
        if number % 100 == 0:
            print(f"{number} sentences, {time.perf_counter() - started:.0f} s", flush=True)
    labels = [bucket_of(high) for _, high in BUCKETS if bucket_of(high) in agree]
    print(f"{args.model.name}, {len(sources)} sources of {args.data[0].name}, {args.method} ({args.steps} steps), beam 5")
    print(f"{'words':>6} {'sources':>8} {'argmax agree':>13} {'Spearman':>9}")
    for label in labels:
        count = sum(1 for s in sources if bucket_of(len(s.split())) == label)
        print(f"{label:>6} {count:>8} {statistics.mean(agree[label]):>13.2f} {statistics.mean(correlation[label]):>9.2f}")
    every_agree = [a for label in labels for a in agree[label]]
    every_corr = [c for label in labels for c in correlation[label]]
    print(f"{'all':>6} {len(sources):>8} {statistics.mean(every_agree):>13.2f} {statistics.mean(every_corr):>9.2f}")
    if args.figure:
        figure = go.Figure([go.Bar(name="argmax agreement", x=labels, y=[statistics.mean(agree[l]) for l in labels]),
                            go.Bar(name="Spearman (mean)", x=labels, y=[statistics.mean(correlation[l]) for l in labels])])
        figure.update_layout(title=f"Attention vs saliency ({args.method}), {args.model.name}, {args.data[0].name}",
                             xaxis_title="source words", yaxis_range=[0, 1], barmode="group", width=700, height=400)
        figure.write_image(str(args.figure), scale=2)


if __name__ == "__main__":
    main()
