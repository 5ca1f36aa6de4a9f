"""Do wrong words come from training sentences that say them? The study behind the README's table.

    python -m scripts.neighbour_study --model checkpoints/en-fr \
        --data ../shared/data/tatoeba/eng-fra.dev.tsv.gz --limit 300 --figure assets/neighbour_study.png

For a seeded sample of the data's distinct sources: the model's beam-5 output, and for every
output word (its first piece; punctuation and </s> aside) the k = 10 nearest training pieces by
the decoder state that chose it (``Translator.neighbours``, side "output"). A word is *wrong* when
it appears in none of the source's references (compared case-folded, the references split into
words by the same rule the explorer uses), else *right*. Per class: the words, the mean number of
neighbours whose training translation says the same word at that point, the share of words with
at least one and with a majority (>= 6) of such neighbours, and the mean similarity of the nearest.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import plotly.graph_objects as go

import s2s
from s2s.data import group_references, read_pairs
from s2s.tokenizer import EOS_ID, PUNCTUATION, merge_pieces

K = 10


def words_of(translator: s2s.Translator, text: str) -> set[str]:
    pieces = translator.tokenizer.pieces(translator.tokenizer.encode(text))
    return {word.casefold() for word, _ in merge_pieces(pieces)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", nargs="+", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=300, help="sources sampled (0 = all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--figure", type=Path, help="PNG to write (needs kaleido, requirements-dev.txt)")
    args = parser.parse_args()
    translator = s2s.load(args.model)
    sources, references = group_references(read_pairs(args.data))
    chosen = sorted(random.Random(args.seed).sample(range(len(sources)), args.limit)) \
        if args.limit and args.limit < len(sources) else list(range(len(sources)))
    same: dict[str, list[int]] = {"wrong": [], "right": []}
    nearest: dict[str, list[float]] = {"wrong": [], "right": []}
    examples: list[str] = []
    started = time.perf_counter()
    results = translator.translate_batch([sources[i] for i in chosen], strategy="beam", beam_size=5,
                                         split_sentences=False)
    for number, (row, result) in enumerate(zip(chosen, results), start=1):
        (sentence,) = result["sentences"]
        best = sentence["hypotheses"][0]
        allowed = set().union(*(words_of(translator, reference) for reference in references[row]))
        for word in best["words"]:
            text, position = word["text"], word["pieces"][0]
            if best["ids"][position] == EOS_ID or all(character in PUNCTUATION for character in text):
                continue
            kind = "right" if text.casefold() in allowed else "wrong"
            found = translator.neighbours(sentence["source"], best["ids"], "output", position, K)
            same[kind].append(found["same_word"])
            nearest[kind].append(found["neighbours"][0]["similarity"])
            if kind == "wrong" and len(examples) < 8 and found["same_word"] >= 6:
                first = found["neighbours"][0]
                examples.append(f"  “{text}” in “{best['text']}” ({found['same_word']}/{K}); nearest: "
                                f"{first['source']} → {first['target']}")
        if number % 50 == 0:
            print(f"{number} sentences, {time.perf_counter() - started:.0f} s", flush=True)
    print(f"{args.model.name}, {len(chosen)} sources of {args.data[0].name} (seed {args.seed}), beam 5, k = {K}, "
          f"{time.perf_counter() - started:.0f} s")
    print(f"{'words':>6} {'count':>6} {'same word (mean of 10)':>23} {'>= 1 says it':>13} {'majority':>9} "
          f"{'nearest sim':>12}")
    for kind in ("right", "wrong"):
        counts = same[kind]
        print(f"{kind:>6} {len(counts):>6} {statistics.mean(counts):>23.2f} "
              f"{sum(c >= 1 for c in counts) / len(counts):>13.1%} {sum(c >= 6 for c in counts) / len(counts):>9.1%} "
              f"{statistics.mean(nearest[kind]):>12.3f}")
    print("wrong words most of whose neighbours say them:")
    print("\n".join(examples))
    if args.figure:
        figure = go.Figure([go.Bar(name=f"{kind} words ({len(same[kind])})", x=list(range(K + 1)),
                                   y=[sum(c == n for c in same[kind]) / len(same[kind]) for n in range(K + 1)])
                            for kind in ("right", "wrong")])
        figure.update_layout(title=f"Of the 10 nearest training pieces (decoder state), how many say the same word? "
                                   f"{args.model.name}, {args.data[0].name}", title_font_size=13,
                             xaxis_title="neighbours whose training translation says the output word there",
                             yaxis_title="share of output words", yaxis_tickformat=".0%", barmode="group",
                             width=760, height=380)
        figure.write_image(str(args.figure), scale=2)


if __name__ == "__main__":
    main()
