"""How often ``/detect`` (``s2s.libretranslate.detect_languages``) names the right language, on the
Tatoeba dev sets' sentences of the four languages (each distinct sentence once), by length.

    python -m scripts.language_id [--data ../shared/data/tatoeba] [--min-words 5]

The identifier chooses among the four languages the shipped models read or write (en, fr, es,
de), as the server asks it to.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

from s2s.libretranslate import detect_languages

LANGUAGES = ["de", "en", "es", "fr"]
FILES = {"fra": "fr", "spa": "es", "deu": "de"}


def sentences(folder: Path) -> dict[str, set[str]]:
    """Distinct sentences per language code from ``eng-XXX.dev.tsv.gz`` (English from all three)."""
    found: dict[str, set[str]] = {code: set() for code in LANGUAGES}
    for suffix, code in FILES.items():
        with gzip.open(folder / f"eng-{suffix}.dev.tsv.gz", "rt", encoding="utf-8", newline="\n") as lines:
            for line in lines:
                english, _, other = line.rstrip("\n").partition("\t")
                found["en"].add(english.strip())
                found[code].add(other.strip())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/tatoeba")
    parser.add_argument("--min-words", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    total = right = 0
    for code, texts in sentences(args.data).items():
        for label, keep in ((f"{args.min_words}+ words", lambda n: n >= args.min_words),
                            (f"under {args.min_words}", lambda n: n < args.min_words)):
            chosen = [text for text in texts if keep(len(text.split()))]
            correct = sum(detect_languages(text, LANGUAGES)[0][0] == code for text in chosen)
            print(f"{code} {label}: {correct:,} of {len(chosen):,} right ({100 * correct / max(1, len(chosen)):.2f}%)")
            if label.endswith("words"):
                total, right = total + len(chosen), right + correct
    print(f"all {args.min_words}+ words: {right:,} of {total:,} right ({100 * right / total:.2f}%), "
          f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
