"""Toy tasks generated on the fly, each with a known correct alignment, for watching attention learn.

Every task writes whitespace-separated tokens on both sides, so a token is a word of the
explorer and the gold alignment can name it by position. The gold alignment of a pair is a
list of ``(source_word, target_word)`` index pairs, the "Pharaoh" format of word aligners
(``0-3 1-2``); an output word with no pair (the ``-`` of a date) is not scored, and a word with
several pairs is right when attention picks any of them (the two digits of "twelve").

- ``dates``: several written forms of a date -> ISO order, ``4 March 1998`` -> ``1998 - 03 - 04``;
- ``reverse``: letters reversed, ``k d x`` -> ``x d k``;
- ``sort``: digits sorted, ``7 2 9 4`` -> ``2 4 7 9``;
- ``numbers``: digits -> English words, ``3 4 7`` -> ``three hundred forty seven``.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import string
from pathlib import Path
from typing import Callable, Sequence

TRAIN_FILE, DEV_FILE, ALIGNMENT_FILE = "train.tsv", "dev.tsv", "dev.align"
TRAIN_PAIRS, DEV_PAIRS = 20_000, 500  # what write_task writes by default
Alignment = list[tuple[int, int]]  # (source word, target word) pairs


@dataclasses.dataclass(frozen=True)
class ToyPair:
    source: str
    target: str
    alignment: Alignment


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _date(rng: random.Random) -> ToyPair:
    """One of five written forms; the ISO target's year, month and day align to their source words."""
    date = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(73_000))  # 1900 to 2099
    month, day, year = MONTHS[date.month - 1], date.day, str(date.year)
    forms = [  # (tokens, index of year, of month, of day)
        ([str(day), month, year], 2, 1, 0),
        ([month, str(day), ",", year], 3, 0, 1),
        (["the", _ordinal(day), "of", month, year], 4, 3, 1),
        ([month[:3], _ordinal(day), year], 2, 0, 1),
        ([f"{day:02d}", "/", f"{date.month:02d}", "/", year], 4, 2, 0),
    ]
    tokens, year_at, month_at, day_at = rng.choice(forms)
    target = [year, "-", f"{date.month:02d}", "-", f"{day:02d}"]
    return ToyPair(" ".join(tokens), " ".join(target), [(year_at, 0), (month_at, 2), (day_at, 4)])


def _reverse(rng: random.Random) -> ToyPair:
    tokens = [rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 10))]
    n = len(tokens)
    return ToyPair(" ".join(tokens), " ".join(reversed(tokens)), [(n - 1 - j, j) for j in range(n)])


def _sort(rng: random.Random) -> ToyPair:
    """A repeated digit may align to any of its copies."""
    tokens = [str(rng.randrange(10)) for _ in range(rng.randint(3, 10))]
    target = sorted(tokens)
    alignment = [(i, j) for j, digit in enumerate(target) for i, token in enumerate(tokens) if token == digit]
    return ToyPair(" ".join(tokens), " ".join(target), alignment)


ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number(rng: random.Random) -> ToyPair:
    """1 to 9999, one source word per digit: "thousand" and "hundred" align to their digit, a tens
    word to the tens digit, a teen to both of its digits."""
    digits = str(rng.randint(1, 9999))
    place = {len(digits) - 1 - i: i for i in range(len(digits))}  # power of ten -> source word
    words: list[str] = []
    alignment: Alignment = []

    def say(word: str, *sources: int) -> None:
        alignment.extend((source, len(words)) for source in sources)
        words.append(word)

    for power, name in ((3, "thousand"), (2, "hundred")):
        if power in place and digits[place[power]] != "0":
            say(ONES[int(digits[place[power]])], place[power])
            say(name, place[power])
    tens = int(digits[place[1]]) if 1 in place else 0
    ones = int(digits[place[0]])
    if tens == 1:
        say(ONES[10 + ones], place[1], place[0])
    else:
        if tens:
            say(TENS[tens], place[1])
        if ones:
            say(ONES[ones], place[0])
    return ToyPair(" ".join(digits), " ".join(words), alignment)


TASKS: dict[str, Callable[[random.Random], ToyPair]] = {
    "dates": _date, "reverse": _reverse, "sort": _sort, "numbers": _number}
TASK_EXAMPLES = {name: f"{pair.source} → {pair.target}" for name, pair in
                 ((name, make(random.Random(3))) for name, make in TASKS.items())}


def generate(task: str, count: int, seed: int) -> list[ToyPair]:
    """``count`` distinct pairs of ``task`` (fewer when the task has fewer), in a fixed order for ``seed``."""
    if task not in TASKS:
        raise ValueError(f"unknown toy task {task!r}; choose one of {', '.join(TASKS)}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng, make = random.Random(seed), TASKS[task]
    pairs: dict[str, ToyPair] = {}
    for _ in range(count * 20):
        pair = make(rng)
        pairs.setdefault(pair.source, pair)
        if len(pairs) == count:
            break
    return list(pairs.values())


def format_alignment(alignment: Alignment) -> str:
    return " ".join(f"{source}-{target}" for source, target in alignment)


def parse_alignment(line: str, where: str) -> Alignment:
    """``"0-3 1-2"`` -> [(0, 3), (1, 2)]; a malformed item raises ValueError naming ``where``."""
    pairs = []
    for item in line.split():
        source, _, target = item.partition("-")
        if not (source.isdigit() and target.isdigit()):
            raise ValueError(f"{where}: expected source-target word index pairs like 0-3, got {item!r}")
        pairs.append((int(source), int(target)))
    return pairs


def read_alignments(path: Path) -> list[Alignment]:
    """One gold alignment per line of a dev file (see ``format_alignment``)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [parse_alignment(line, f"{path}:{number}") for number, line in enumerate(lines, start=1)]


def write_task(task: str, out: Path, train_size: int = TRAIN_PAIRS, dev_size: int = DEV_PAIRS, seed: int = 1
               ) -> dict[str, Path]:
    """Write ``train.tsv``, ``dev.tsv`` and the dev set's gold alignments ``dev.align`` into ``out``;
    the dev sources never occur in the training data, which gets up to ``train_size`` pairs (all
    the others, for a task with fewer: ``numbers`` has 9,999)."""
    pairs = generate(task, train_size + dev_size, seed)
    if len(pairs) < 2 * dev_size:
        raise ValueError(f"{task} has only {len(pairs)} distinct pairs: too few for a dev set of {dev_size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev, train = pairs[:dev_size], pairs[dev_size:]
    paths = {"train": out / TRAIN_FILE, "dev": out / DEV_FILE, "alignments": out / ALIGNMENT_FILE}
    _write_lines(paths["train"], [f"{p.source}\t{p.target}" for p in train])
    _write_lines(paths["dev"], [f"{p.source}\t{p.target}" for p in dev])
    _write_lines(paths["alignments"], [format_alignment(p.alignment) for p in dev])
    return paths


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
