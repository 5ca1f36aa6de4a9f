"""Toy tasks, their gold alignments, alignment accuracy, probe snapshots and upload checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from s2s.alignment import aligned_pairs, alignment_accuracy, alignment_hits, forced_alignment_accuracy
from s2s.cli import main
from s2s.data import read_pairs
from s2s.train import ALIGNMENT_SAMPLE
from s2s.translator import load
from s2s.toy import TASKS, generate, parse_alignment, read_alignments, write_task
from s2s.uploads import MIN_PAIRS, read_upload
from tests.conftest import TINY_TRAIN_OPTIONS


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_gold_alignment_names_words_that_exist_and_says_the_same_thing(task: str) -> None:
    for pair in generate(task, 300, seed=5):
        source, target = pair.source.split(), pair.target.split()
        assert pair.alignment, pair
        for s, t in pair.alignment:
            assert 0 <= s < len(source) and 0 <= t < len(target), pair
        if task in ("reverse", "sort"):  # a token is copied: it must equal the word it aligns to
            assert all(source[s] == target[t] for s, t in pair.alignment), pair
        if task == "sort":
            assert target == sorted(source)


def test_numbers_and_dates_are_right() -> None:
    numbers = {p.source: p.target for p in generate("numbers", 9999, seed=1)}
    assert numbers["3 4 7"] == "three hundred forty seven"
    assert numbers["1 2"] == "twelve"
    assert numbers["1 0 0 5"] == "one thousand five"
    assert numbers["9 0 1 9"] == "nine thousand nineteen"
    assert len(numbers) == 9999
    for pair in generate("dates", 200, seed=2):
        year, _, month, _, day = pair.target.split()
        words = pair.source.split()
        aligned = {t: words[s] for s, t in pair.alignment}
        assert aligned[0] == year and len(month) == 2 and len(day) == 2
        assert aligned[4].lstrip("0").rstrip("stndrh") == day.lstrip("0")


def test_toy_data_command_writes_a_dev_set_apart_from_the_training_data(tmp_path: Path) -> None:
    assert main(["toy-data", "reverse", "--out", str(tmp_path), "--train-size", "400", "--dev-size", "50"]) == 0
    train = [line.split("\t")[0] for line in (tmp_path / "train.tsv").read_text().splitlines()]
    dev = [line.split("\t")[0] for line in (tmp_path / "dev.tsv").read_text().splitlines()]
    assert len(train) == 400 and len(dev) == 50 and not set(train) & set(dev)
    assert len(read_alignments(tmp_path / "dev.align")) == 50
    with pytest.raises(ValueError, match="too few"):
        write_task("numbers", tmp_path, train_size=10, dev_size=6000)
    with pytest.raises(ValueError, match="source-target"):
        parse_alignment("0-1 x", "here")


SOURCE = ["▁a", "▁b", "b", "▁c", "</s>"]  # words a, bb, c and </s>
TARGET = ["▁c", "▁b", "b", "▁a", "</s>"]  # the reversal: c <- 2, bb <- 1, a <- 0
GOLD = [(2, 0), (1, 1), (0, 2)]


def test_alignment_accuracy_is_one_for_perfect_attention_and_low_for_uniform() -> None:
    perfect = np.zeros((5, 5))
    perfect[0, 3], perfect[1, 1], perfect[2, 2], perfect[3, 0], perfect[4, 4] = 1, 1, 1, 1, 1
    assert alignment_hits(perfect, SOURCE, TARGET, GOLD) == (3, 3)
    uniform = np.full((5, 5), 0.2)  # word "bb" gets two pieces' weight: it wins every row
    hits, scored = alignment_hits(uniform, SOURCE, TARGET, GOLD)
    assert scored == 3 and hits == 1
    parked = np.zeros((5, 5))
    parked[:, 4] = 1  # everything on </s>: no output word is right
    assert alignment_hits(parked, SOURCE, TARGET, GOLD) == (0, 3)
    assert alignment_accuracy([(3, 3), (1, 3)]) == pytest.approx(4 / 6)
    assert alignment_accuracy([]) is None


def test_training_records_probe_snapshots_and_alignment_accuracy(tmp_path: Path) -> None:
    paths = write_task("reverse", tmp_path / "data", train_size=400, dev_size=40)
    out = tmp_path / "model"
    assert main(["train", "--train", str(paths["train"]), "--dev", str(paths["dev"]), "--dev-alignments",
                 str(paths["alignments"]), "--out", str(out), "--max-steps", "40", "--valid-every", "20",
                 "--probe", "a b c d", *TINY_TRAIN_OPTIONS]) == 0
    probes = [json.loads(line) for line in (out / "probes.jsonl").read_text().splitlines()]
    assert [p["step"] for p in probes] == [20, 40]
    for probe in probes:
        attention = np.asarray(probe["attention"])
        assert probe["source"] == "a b c d" and probe["pieces"][-1] == "</s>"
        assert attention.shape == (len(probe["pieces"]), len(probe["source_pieces"]))
        np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-3)
    validations = [r for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines())
                   if r["event"] == "validation"]
    assert [v["step"] for v in validations if not v.get("end_of_run")] == [20, 40]
    metrics = json.loads((out / "metrics.json").read_text())
    assert "alignment accuracy" in (out / "README.md").read_text()
    # The figure logged for the saved (best) model is that model's own, recomputed from its weights.
    translator = load(out)
    dev = read_pairs([paths["dev"]])
    pairs = aligned_pairs(translator.tokenizer, dev[:ALIGNMENT_SAMPLE], read_alignments(paths["alignments"])[:ALIGNMENT_SAMPLE])
    recomputed = forced_alignment_accuracy(translator.model, pairs)
    assert metrics["dev"]["alignment_accuracy"] == pytest.approx(recomputed, abs=1e-3)
    best = next(v for v in validations if v["step"] == metrics["dev"]["step"])
    assert best["alignment_accuracy"] == metrics["dev"]["alignment_accuracy"]


def test_alignments_must_match_the_dev_set_line_for_line(tmp_path: Path) -> None:
    paths = write_task("reverse", tmp_path, train_size=200, dev_size=20)
    paths["alignments"].write_text("0-0\n")
    assert main(["train", "--train", str(paths["train"]), "--dev", str(paths["dev"]), "--dev-alignments",
                 str(paths["alignments"]), "--out", str(tmp_path / "m"), "--max-steps", "2",
                 *TINY_TRAIN_OPTIONS]) == 2


def _tsv(path: Path, lines: list[str], opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return path


GOOD = [f"source {i}\ttarget {i}" for i in range(MIN_PAIRS)]


@pytest.mark.parametrize("lines, message", [
    (GOOD[:50] + ["no tab here"] + GOOD, "line 51: no tab"),
    (GOOD[:7] + [""] + GOOD, "line 8: empty line"),
    (GOOD[:3] + ["a\tb\tc"] + GOOD, "line 4: 3 columns where the lines before have 2"),
    (GOOD[:9] + ["a\t "] + GOOD, "line 10: the target is empty"),
    (GOOD[:20], f"only 20 pairs; at least {MIN_PAIRS}"),
])
def test_a_bad_upload_is_refused_with_the_line_that_is_wrong(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_upload([_tsv(tmp_path / "data.tsv", lines)])


def test_uploads_accept_gzip_and_two_files_and_refuse_binary_and_ragged_pairs(tmp_path: Path) -> None:
    assert len(read_upload([_tsv(tmp_path / "data.tsv.gz", GOOD, gzip.open)])) == MIN_PAIRS
    sources = _tsv(tmp_path / "src.txt", [f"s {i}" for i in range(MIN_PAIRS)])
    assert read_upload([sources, _tsv(tmp_path / "tgt.txt", [f"t {i}" for i in range(MIN_PAIRS)])])[5] == ("s 5", "t 5")
    with pytest.raises(ValueError, match="line-aligned"):
        read_upload([sources, _tsv(tmp_path / "short.txt", ["t"] * 99)])
    binary = tmp_path / "weights.tsv"
    binary.write_bytes(("ok\tfine\n" * 3).encode() + b"\xff\xfe\x00\tbad\n")
    with pytest.raises(ValueError, match="line 4: not UTF-8 text"):
        read_upload([binary])
    corrupt = tmp_path / "broken.tsv.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(ValueError, match="cannot be read"):
        read_upload([corrupt])
