"""Store a model's training-source length profile in its metrics.json (and card), for models
trained before ``python -m s2s train`` wrote it: the explorer then notes inputs longer than
99% of what the model was trained on.

    python -m scripts.training_profile --model checkpoints/en-fr \
        --train ../shared/data/tatoeba/eng-fra.train.tsv.gz

The training pairs are read and filtered exactly as training did (its ``max_len``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from s2s.card import update_metrics
from s2s.checkpoint import TOKENIZER_FILE, read_metrics
from s2s.data import read_pairs
from s2s.familiarity import length_profile
from s2s.tokenizer import Tokenizer
from s2s.train import encode_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--train", nargs="+", type=Path, required=True, help="the model's training data")
    args = parser.parse_args()
    max_len = read_metrics(args.model)["train"]["max_len"]
    sources, _, _ = encode_pairs(Tokenizer.load(args.model / TOKENIZER_FILE), read_pairs(args.train), max_len)
    profile = length_profile([len(s) for s in sources])
    update_metrics(args.model, {"training_profile": profile})
    print(args.model, profile)


if __name__ == "__main__":
    main()
