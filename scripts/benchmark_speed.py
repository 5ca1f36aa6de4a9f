"""Translation speed of models, measured as a user meets it: the whole `python -m s2s translate`
process (start-up and model loading included) over a file of sentences.

    python -m scripts.benchmark_speed --model checkpoints/de-en [checkpoints/de-en-transformer ...] \
        --source ../shared/data/multi30k/test_2016_flickr.de.gz [--weights int8 bf16-output] [--save] \
        [--reference ../shared/data/multi30k/test_2016_flickr.en.gz] [--runs 3] [--one-at-a-time-lines 300] \
        [--joey-python joey-venv/bin/python --joey-config rnn.yaml] [--rows "beam 5"]

Rows: start-up (the whole process for the first sentence alone, in seconds), greedy and beam 5
in batches of 64, then one sentence at a time (--batch-size 1); those four rows again for each
of ``--weights`` (reduced precisions of our models: ``s2s.precision``). Several systems are
timed row by row, one after the other, so that each row compares them in the same minutes;
``--runs`` repeats every row and reports the median. With ``--reference`` each row also gets its
BLEU (sacrebleu, as the project scores). ``--rows TEXT`` keeps the rows whose label holds TEXT.
``--one-at-a-time-lines`` times the one-sentence rows on the first N lines only (they are the
slow ones; BLEU is then of those lines).

The peer, Joey NMT (see ``../shared/peers/joeynmt/README.md``; in its own venv), joins as one more
system with ``--joey-python`` and ``--joey-config``: its ``joeynmt translate`` runs with the row's
beam size and batch size written into a copy of the config (the reduced-precision rows skip it:
the peer has no such option). Both run from compiled bytecode, as they do for a user: pip compiled
the peer's package when it installed it, and ``s2s/`` is compiled here before the first row (this
machine sets PYTHONDONTWRITEBYTECODE, under which every process would compile s2s again: 30 ms).
Also prints the training speed recorded in metrics.json. --save stores our models' figures in
metrics.json.
"""

from __future__ import annotations

import argparse
import compileall
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sacrebleu
import torch

from s2s.card import update_metrics
from s2s.checkpoint import read_metrics
from s2s.data import open_text
from s2s.precision import DEFAULT_WEIGHTS, WEIGHTS

ROOT = Path(__file__).resolve().parent.parent
# label, beam size (1 = greedy), batch size, lines (None: all, or --one-at-a-time-lines for batch
# size 1). The start-up row is one sentence: what a process costs before its translations
# (imports, model loading), as a person meets it.
START_UP = ("start-up: one sentence, beam 5", 5, 1, 1)
ROWS = (("greedy, batches of 64", 1, 64, None),
        ("beam 5, batches of 64", 5, 64, None),
        ("greedy, one sentence at a time", 1, 1, None),
        ("beam 5, one sentence at a time", 5, 1, None))


def benchmark_rows(weights: list[str]) -> list[tuple[str, int, int, int | None, str]]:
    """Every row in its order, each with the weights our models hold in it."""
    reduced = [(f"{label}, --weights {kind}", beam, batch, lines, kind)
               for kind in weights if kind != DEFAULT_WEIGHTS for label, beam, batch, lines in ROWS]
    return [(*START_UP, DEFAULT_WEIGHTS), *[(*row, DEFAULT_WEIGHTS) for row in ROWS], *reduced]


def translate_options(beam_size: int, batch_size: int, weights: str) -> list[str]:
    """The options of `python -m s2s translate` for one row."""
    strategy = ["--strategy", "greedy"] if beam_size == 1 else ["--strategy", "beam", "--beam-size", str(beam_size)]
    return [*strategy, "--batch-size", str(batch_size), "--weights", weights]


def joey_config(config: Path, beam_size: int, batch_size: int, folder: Path) -> Path:
    """A copy of Joey's YAML config with ``testing.beam_size`` and ``testing.batch_size`` set
    (both keys must be in its ``testing`` section, as in the peer recipe)."""
    text = config.read_text()
    for key, value in (("beam_size", beam_size), ("batch_size", batch_size)):
        testing = text.index("\ntesting:")
        pattern = re.compile(rf"(\n\s+{key}:\s*)\d+")
        match = pattern.search(text, testing)
        if match is None:
            raise SystemExit(f"{config}: no testing.{key} to set")
        text = text[:match.start()] + f"{match.group(1)}{value}" + text[match.end():]
    path = folder / f"joey-beam{beam_size}-batch{batch_size}.yaml"
    path.write_text(text)
    return path


def timed(command: list[str], text: str) -> tuple[float, list[str]]:
    """Seconds the whole process took, and its stdout lines."""
    started = time.perf_counter()
    result = subprocess.run(command, input=text, text=True, capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - started, result.stdout.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, nargs="+", required=True)
    parser.add_argument("--weights", nargs="*", choices=tuple(WEIGHTS), default=[],
                        help="also time the four rows with our models holding their weights so (none by default)")
    parser.add_argument("--source", type=Path, required=True, help="one sentence per line (.gz accepted)")
    parser.add_argument("--reference", type=Path, help="the references, line by line: BLEU beside each row")
    parser.add_argument("--runs", type=int, default=1, help="runs of every row; the median is reported")
    parser.add_argument("--one-at-a-time-lines", type=int, default=0,
                        help="time the one-sentence rows on the first N lines only (0 = all)")
    parser.add_argument("--rows", default="", help="time only the rows whose label holds this text, e.g. 'beam 5'")
    parser.add_argument("--joey-python", type=Path, help="the Python of Joey NMT's venv")
    parser.add_argument("--joey-config", type=Path, help="the peer's YAML config (its model_dir holds the model)")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    if (args.joey_python is None) != (args.joey_config is None):
        parser.error("--joey-python and --joey-config go together")

    with open_text(args.source) as handle:
        lines = [line.rstrip("\n") for line in handle]
    references = None
    if args.reference:
        with open_text(args.reference) as handle:
            references = [line.rstrip("\n") for line in handle]
        if len(references) != len(lines):
            parser.error(f"{args.reference} has {len(references)} lines for {len(lines)} sources")
    speed: dict[Path, dict[str, object]] = {model: {} for model in args.model}
    compileall.compile_dir(ROOT / "s2s", quiet=1)
    with tempfile.TemporaryDirectory(prefix="s2s-benchmark-") as folder:
        for label, beam_size, batch_size, row_lines, weights in benchmark_rows(args.weights):
            if args.rows not in label:
                continue
            count = row_lines or (min(len(lines), args.one_at_a_time_lines)
                                  if batch_size == 1 and args.one_at_a_time_lines else len(lines))
            text = "\n".join(lines[:count]) + "\n"
            options = translate_options(beam_size, batch_size, weights)
            systems = [(model.name, [sys.executable, "-m", "s2s", "translate", "--model", str(model), *options],
                        model) for model in args.model]
            if args.joey_python and weights == DEFAULT_WEIGHTS:  # Joey has no reduced precision
                config = joey_config(args.joey_config, beam_size, batch_size, Path(folder))
                systems.append(("joeynmt", [str(args.joey_python), "-m", "joeynmt", "translate", str(config)], None))
            seconds: dict[str, list[float]] = {name: [] for name, _, _ in systems}
            outputs: dict[str, list[str]] = {}
            for _ in range(args.runs):
                for name, command, _ in systems:  # one system after the other, in the same minutes
                    taken, outputs[name] = timed(command, text)
                    seconds[name].append(taken)
            for name, _, model in systems:
                median = statistics.median(seconds[name])
                bleu = ""
                if references is not None and row_lines != 1:
                    if len(outputs[name]) != count:
                        raise SystemExit(f"{name} wrote {len(outputs[name])} lines for {count} inputs")
                    bleu = f"  BLEU {sacrebleu.corpus_bleu(outputs[name], [references[:count]]).score:.2f}"
                if row_lines == 1:  # the start-up row: seconds, not sentences/s
                    runs = ", ".join(f"{s:.2f}" for s in seconds[name])
                    print(f"{name:<20} {label:<54} {median:8.2f} s  (median of {args.runs}: {runs})", flush=True)
                    if model is not None:
                        speed[model][f"seconds, {label} (whole process)"] = round(median, 2)
                    continue
                runs = ", ".join(f"{count / s:.1f}" for s in seconds[name])
                print(f"{name:<20} {label:<54} {count / median:8.1f} sentences/s  (median of {args.runs}: {runs}; "
                      f"{count} sentences){bleu}", flush=True)
                if model is not None:
                    subset = f", first {count} sentences" if count < len(lines) else ""
                    speed[model][f"sentences/s, {label} (whole process{subset})"] = round(count / median, 1)
    for model in args.model:
        training = read_metrics(model).get("training", {}).get("tokens_per_second")
        if training:
            print(f"{model.name:<20} {'training':<54} {training:8.1f} target tokens/s (from metrics.json)")
            speed[model]["training target tokens/s"] = training
        speed[model]["measured on"] = f"{torch.get_num_threads()} CPU threads, {len(lines)} sentences of {args.source.name}"
        if args.save:
            update_metrics(model, {"speed": speed[model]})


if __name__ == "__main__":
    main()
