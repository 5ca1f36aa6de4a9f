"""Word-level attention heatmaps of a model's beam-5 outputs, as PNG figures for the README.

    python -m scripts.attention_figures --model checkpoints/en-de \
        --sentence "I will call you tomorrow." --sentence "I know that he is coming tomorrow." \
        --out assets/en_de_separable_verb.png assets/en_de_verb_final.png

Prints each output and, for every output word, the source word it attends to most (the numbers
the README's notes quote). Needs kaleido (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import s2s
from s2s.plots import attention_heatmap, merge_attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--sentence", action="append", required=True)
    parser.add_argument("--out", nargs="+", type=Path, required=True, help="one PNG per sentence")
    args = parser.parse_args()
    if len(args.out) != len(args.sentence):
        parser.error("give one --out file per --sentence")
    translator = s2s.load(args.model)
    for text, path in zip(args.sentence, args.out):
        sentence = translator.translate(text, beam_size=5, split_sentences=False)["sentences"][0]
        best = sentence["hypotheses"][0]
        weights, source_words, output_words = merge_attention(np.asarray(best["attention"]), sentence["source_pieces"],
                                                              best["pieces"])
        print(f"{text} -> {best['text']}")
        for word, row in zip(output_words, weights):
            print(f"  {word:>14} <- {source_words[int(row.argmax())]} ({row.max():.2f})")
        figure = attention_heatmap(sentence["source_pieces"], best["pieces"], best["attention"],
                                   f"{args.model.name}: “{text}” → “{best['text']}”", merge_words=True)
        figure.update_layout(paper_bgcolor="white", plot_bgcolor="white", font={"color": "#222"}, width=640,
                             margin={"l": 90, "r": 20, "t": 170, "b": 20})
        figure.write_image(str(path), scale=2)


if __name__ == "__main__":
    main()
