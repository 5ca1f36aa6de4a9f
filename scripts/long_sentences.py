"""Collapsed outputs on long sentences, and dev BLEU, for coverage penalty / minimum length settings.

    python -m scripts.long_sentences --model checkpoints/en-fr \
        --data ../shared/data/tatoeba/eng-fra.dev.tsv.gz --beta 0 0.2 0.4 --min-ratio 0 0.5

Long inputs are assembled from the data's own sources: consecutive sources joined with "; "
(one sentence to a segmenter) until they have at least --min-words words, which is longer than
nearly every training sentence. An output "collapses" when it has fewer than 40% of its source's
words. For each setting the script prints the share of collapsed outputs on the long set and
beam search's BLEU and chrF on the data itself, so a default can be chosen that helps the first
without costing the second.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import s2s
from s2s.data import group_references, read_pairs
from s2s.evaluate import corpus_scores

COLLAPSE_RATIO = 0.4


def long_inputs(sources: list[str], min_words: int, count: int) -> list[str]:
    """Join consecutive sources (final punctuation dropped but for the last) until ``min_words``."""
    joined, parts = [], []
    for source in sources:
        parts.append(source)
        if sum(len(p.split()) for p in parts) >= min_words:
            joined.append("; ".join([p.rstrip(".!?") for p in parts[:-1]] + [parts[-1]]))
            parts = []
        if len(joined) == count:
            break
    return joined


def collapsed_share(inputs: list[str], outputs: list[str]) -> float:
    collapsed = sum(len(o.split()) < COLLAPSE_RATIO * len(i.split()) for i, o in zip(inputs, outputs))
    return collapsed / max(1, len(inputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", nargs="+", type=Path, required=True, help="TSV or SRC TGT files")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--beta", nargs="+", type=float, default=[0.0, 0.2, 0.4], help="coverage penalties")
    parser.add_argument("--min-ratio", nargs="+", type=float, default=[0.0, 0.5], help="minimum length ratios")
    parser.add_argument("--min-words", type=int, default=20)
    parser.add_argument("--count", type=int, default=300, help="long inputs to assemble")
    args = parser.parse_args()

    translator = s2s.load(args.model)
    sources, references = group_references(read_pairs(args.data))
    inputs = long_inputs(sources, args.min_words, args.count)
    words = sorted(len(i.split()) for i in inputs)
    print(f"{len(inputs)} long inputs, {words[0]}-{words[-1]} words (median {words[len(words) // 2]}); "
          f"{len(sources)} sources for BLEU")
    print(f"{'beta':>5} {'min ratio':>9} {'collapsed':>9} {'greedy collapsed':>16} {'BLEU':>6} {'chrF':>6}")
    for beta, min_ratio in itertools.product(args.beta, args.min_ratio):
        settings = s2s.DecodeSettings(beam_size=args.beam_size, coverage_penalty=beta, min_length_ratio=min_ratio,
                                      split_sentences=False).validate()
        best = lambda texts, s: [r["text"] for r in translator.translate_batch(texts, s)]  # noqa: E731
        long_outputs = best(inputs, settings)
        greedy_outputs = best(inputs, s2s.DecodeSettings(strategy="greedy", min_length_ratio=min_ratio,
                                                         split_sentences=False).validate())
        scores = corpus_scores(best(sources, settings), references)
        print(f"{beta:>5} {min_ratio:>9} {collapsed_share(inputs, long_outputs):>9.1%} "
              f"{collapsed_share(inputs, greedy_outputs):>16.1%} {scores['bleu']:>6.2f} {scores['chrf']:>6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
