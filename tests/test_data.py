"""Reading parallel data and batching it by length."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s.data import bucket_batches, group_references, make_batch, read_pairs, reference_streams
from s2s.tokenizer import BOS_ID, EOS_ID, PAD_ID


def test_tsv_extra_columns_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text("Hi.\tSalut !\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123\nGo.\tVa !\n")
    assert read_pairs([path]) == [("Hi.", "Salut !"), ("Go.", "Va !")]


def test_line_aligned_files_must_have_the_same_length(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("one\ntwo\n")
    (tmp_path / "b").write_text("un\n")
    with pytest.raises(ValueError, match="different numbers of lines"):
        read_pairs([tmp_path / "a", tmp_path / "b"])


def test_repeated_sources_become_multi_reference() -> None:
    sources, references = group_references([("a", "x"), ("b", "y"), ("a", "z")])
    assert sources == ["a", "b"] and references == [["x", "z"], ["y"]]
    assert reference_streams(references) == [["x", "y"], ["z", None]]


def test_bucketing_covers_every_example_once_with_little_padding() -> None:
    lengths = [(n % 7 + 1, n % 13 + 1) for n in range(500)]
    batches = bucket_batches(lengths, batch_tokens=60, seed=0)
    assert sorted(i for batch in batches for i in batch) == list(range(500))
    for batch in batches:
        widths = [lengths[i][1] + 1 for i in batch]
        assert max(widths) * len(batch) <= 60 or len(batch) == 1
        assert max(widths) - min(widths) <= 1
    assert bucket_batches(lengths, 60, seed=3) == bucket_batches(lengths, 60, seed=3)


def test_batches_add_the_special_tokens() -> None:
    batch = make_batch([[5, 6], [7]], [[8], [9, 10]], BOS_ID)
    assert batch.source.tolist() == [[5, 6, EOS_ID], [7, EOS_ID, PAD_ID]]
    assert batch.source_lengths.tolist() == [3, 2]
    assert batch.target_in.tolist() == [[BOS_ID, 8, PAD_ID], [BOS_ID, 9, 10]]
    assert batch.target_out.tolist() == [[8, EOS_ID, PAD_ID], [9, 10, EOS_ID]]
    assert batch.target_tokens == 5
