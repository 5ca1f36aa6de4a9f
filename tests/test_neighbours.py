"""The neighbour index: a training sentence's own word finds that sentence, stale and damaged
indexes are refused with the command that rebuilds them, and a folder without one keeps working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from s2s.checkpoint import save_model
from s2s.data import pad
from s2s import neighbour_index
from s2s.cli import main
from s2s.neighbour_index import INDEX_FOLDER, MANIFEST_FILE, PARTIAL_FOLDER, NeighbourIndex, NeighbourIndexError, \
    build_index, teacher_forced
from s2s.neighbours import query_state
from s2s.tokenizer import BOS_ID, EOS_ID, Tokenizer
from s2s.translator import Translator

from .conftest import random_model, reverse_task, write_tsv

TRAIN_PAIRS = reverse_task(300, seed=5)


def model_folder(tmp_path: Path, tokenizer: Tokenizer, arch: str = "rnn") -> Path:
    overrides = {"arch": "transformer", "encoder_layers": 2, "decoder_layers": 2, "attention_heads": 2,
                 "feedforward_dim": 32} if arch == "transformer" else {}
    folder = tmp_path / f"model-{arch}"
    save_model(folder, random_model(tokenizer.vocab_size, scale=2.0, **overrides), tokenizer, fp16=False)
    return folder


@pytest.fixture(params=["rnn", "transformer"])
def indexed(request: pytest.FixtureRequest, tmp_path: Path, tokenizer: Tokenizer) -> tuple[Path, Path]:
    folder = model_folder(tmp_path, tokenizer, request.param)
    data = write_tsv(tmp_path / "train.tsv", TRAIN_PAIRS)
    build_index(folder, [data], bytes_per_vector=4, progress=False, log=lambda message: None)
    return folder, data


def test_a_training_sentences_own_word_finds_that_sentence_first(indexed: tuple[Path, Path]) -> None:
    folder, _ = indexed
    translator = Translator.load(folder)
    index = NeighbourIndex.load(folder)
    assert len(index.pairs) == len(TRAIN_PAIRS) and index.manifest["sentences"] == len(TRAIN_PAIRS)
    checked = 0
    for number in (3, 50, 120, 299):
        source, target = TRAIN_PAIRS[number]
        ids = translator.tokenizer.encode(target) + [EOS_ID]
        for side, length in (("source", len(translator.tokenizer.encode(source))), ("output", len(ids) - 1)):
            position = length - 1
            found = translator.neighbours(source, ids, side, position, k=5)
            first = found["neighbours"][0]
            # Duplicates in the data are the same sentence: compare the text, not the number.
            assert (first["source"], first["target"]) == (source, target)
            assert first["position"] == position and first["similarity"] == pytest.approx(1.0, abs=1e-4)
            similarities = [n["similarity"] for n in found["neighbours"]]
            assert similarities == sorted(similarities, reverse=True) and len(similarities) == 5
            if side == "output":
                assert first["same_word"] is True and found["same_word"] >= 1
            assert len(found["map"]["x"]) == len(found["map"]["y"]) == 6
            checked += 1
    assert checked == 8


def test_the_query_is_the_state_the_index_holds_at_every_position(indexed: tuple[Path, Path]) -> None:
    """A query reads only what it needs (the encoder; the decoder up to its piece) and still gets the
    state that the index's full teacher-forced pass stores for that piece, on both sides."""
    translator = Translator.load(indexed[0])
    source, target = TRAIN_PAIRS[11]
    source_ids = translator.tokenizer.encode(source) + [EOS_ID]
    target_ids = translator.tokenizer.encode(target)
    encoder, decoder, _ = teacher_forced(translator.model, [source_ids], [target_ids])
    for side, states in (("source", encoder[0]), ("output", decoder[0])):
        for position in range(len(states)):
            torch.testing.assert_close(query_state(translator.model, source_ids, target_ids, side, position),
                                       states[position], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("side", ["output", "source"])
def test_the_aligned_word_follows_the_models_attention(indexed: tuple[Path, Path], side: str) -> None:
    """The other side's marked word is the model's own forced-decoding argmax: for an output
    neighbour, the source piece its row attends most; for a source neighbour, the target piece
    whose row attends most to it (the returned pairs are read in one padded batch)."""
    folder, _ = indexed
    translator = Translator.load(folder)
    source, target = TRAIN_PAIRS[7]
    ids = translator.tokenizer.encode(target) + [EOS_ID]
    found = translator.neighbours(source, ids, side, 0, k=5)
    assert len(found["neighbours"]) == 5
    for neighbour in found["neighbours"]:
        source_ids = translator.tokenizer.encode(neighbour["source"]) + [EOS_ID]
        target_ids = translator.tokenizer.encode(neighbour["target"]) + [EOS_ID]
        forced = translator.score(neighbour["source"], target_ids[:-1])["hypotheses"][0]
        attention = torch.tensor(forced["attention"])[: len(target_ids) - 1, : len(source_ids) - 1]  # real pieces
        if side == "output":
            expected, pieces = int(attention[neighbour["position"]].argmax()), translator.tokenizer.pieces(source_ids)
            word = neighbour["source_words"][neighbour["source_word"]]
        else:
            expected, pieces = int(attention[:, neighbour["position"]].argmax()), translator.tokenizer.pieces(target_ids)
            word = neighbour["target_words"][neighbour["target_word"]]
        assert word.strip() in pieces[expected].replace("▁", " ")


@pytest.mark.parametrize("overrides", [
    {}, {"rnn_type": "lstm", "decoder_layers": 2}, {"attention": "none"}, {"attention": "luong-general"},
    {"arch": "transformer", "encoder_layers": 2, "decoder_layers": 2, "attention_heads": 2, "feedforward_dim": 32}])
def test_the_state_at_each_rows_end_is_the_full_reads(overrides: dict) -> None:
    """``last_states`` (one packed RNN pass, one attention step per row) gives what ``read`` gives
    at each row's last real position, rows of different lengths padded together."""
    model = random_model(30, scale=2.0, **overrides)
    source = pad([[5, 6, 7, EOS_ID], [8, 9, EOS_ID], [10, 11, 12, 13, 14, EOS_ID]])
    lengths = torch.tensor([4, 3, 6])
    target_in = pad([[BOS_ID, 20, 21, 22], [BOS_ID], [BOS_ID, 23, 24]])
    last = torch.tensor([4, 1, 3])
    with torch.inference_mode():
        memory, state = model.encode(source, lengths)
        full, full_alphas = model.read(target_in, state, memory)
        states, alphas = model.last_states(target_in, last, state, memory)
    rows = torch.arange(3)
    torch.testing.assert_close(states, full[rows, last - 1], atol=1e-5, rtol=1e-4)
    if overrides.get("attention") == "none":
        assert alphas is None and full_alphas is None
    else:
        torch.testing.assert_close(alphas, full_alphas[rows, last - 1], atol=1e-5, rtol=1e-4)


def test_a_stale_index_is_refused_with_the_command_that_rebuilds_it(indexed: tuple[Path, Path], tokenizer: Tokenizer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder, data = indexed
    config = json.loads((folder / "config.json").read_text())
    retrained = random_model(tokenizer.vocab_size, scale=2.0, seed=9, **{
        k: v for k, v in config.items() if k in ("arch", "encoder_layers", "decoder_layers", "attention_heads",
                                                 "feedforward_dim")})
    save_model(folder, retrained, tokenizer, fp16=False)
    translator = Translator.load(folder)
    with pytest.raises(NeighbourIndexError, match=r"stale.*python -m s2s index --model"):
        translator.neighbours(TRAIN_PAIRS[0][0], [EOS_ID], "source", 0)
    hashed = []
    monkeypatch.setattr(neighbour_index, "file_digest", lambda path: hashed.append(path) or "")
    with pytest.raises(NeighbourIndexError, match=r"stale.*python -m s2s index --model"):
        translator.neighbours(TRAIN_PAIRS[0][0], [EOS_ID], "source", 0)
    assert hashed == []  # the refusal is remembered while no file changes
    monkeypatch.undo()
    main(["index", "--model", str(folder), "--data", str(data)])  # rebuilt while the app runs
    assert translator.neighbours(TRAIN_PAIRS[0][0], [EOS_ID], "source", 0)["neighbours"]


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "remove", "manifest"])
def test_a_damaged_index_gives_a_clear_message(indexed: tuple[Path, Path], damage: str) -> None:
    folder, _ = indexed
    path = folder / INDEX_FOLDER / ("source.faiss" if damage != "manifest" else MANIFEST_FILE)
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:100]))
    elif damage == "remove":
        path.unlink()
    else:
        path.write_text("[" * 100_000)
    with pytest.raises(NeighbourIndexError, match=r"damaged.*python -m s2s index --model"):
        NeighbourIndex.load(folder)


def test_an_index_of_an_older_format_is_refused_with_the_command_that_rebuilds_it(indexed: tuple[Path, Path]) -> None:
    """Format 1 stored no alignments: it is refused by name, not read half-way."""
    folder, _ = indexed
    manifest_path = folder / INDEX_FOLDER / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"format": 1}))
    with pytest.raises(NeighbourIndexError,
                       match=r"format 1; this version reads format 2.*python -m s2s index --model"):
        NeighbourIndex.load(folder)


def test_a_folder_without_an_index_translates_and_says_how_to_build_one(tmp_path: Path, tokenizer: Tokenizer) -> None:
    folder = model_folder(tmp_path, tokenizer)
    translator = Translator.load(folder)
    result = translator.translate("red cat runs")
    assert result["sentences"][0]["hypotheses"]
    with pytest.raises(NeighbourIndexError, match=r"has no neighbour index; build it with: python -m s2s index"):
        translator.neighbours("red cat runs", result["sentences"][0]["hypotheses"][0]["ids"], "output", 0)


@pytest.mark.parametrize("side, position, k, message", [
    ("middle", 0, 5, "side must be"), ("source", 99, 5, "position must be a source piece"),
    ("output", 1, 5, "not </s>"), ("output", 0, 0, "k must be"), ("output", 0, 51, "k must be"),
    ("source", True, 5, "position must be")])
def test_bad_queries_are_refused_before_any_search(tmp_path: Path, tokenizer: Tokenizer, side, position, k,
                                                   message) -> None:
    translator = Translator.load(model_folder(tmp_path, tokenizer))  # no index: the check comes first
    ids = tokenizer.encode("cat") + [EOS_ID]
    with pytest.raises(ValueError, match=message):
        translator.neighbours("red cat", ids[-2:], side, position, k)


def interrupted_at(call: int, chunk_states):
    """``chunk_states`` that stops the build (as Ctrl-C would) at its ``call``-th chunk."""
    calls = {"count": 0}

    def interrupted(*args):
        calls["count"] += 1
        if calls["count"] == call:
            raise KeyboardInterrupt
        return chunk_states(*args)

    return interrupted


def test_a_build_cut_off_continues_and_gives_the_index_a_whole_build_gives(tmp_path: Path, tokenizer: Tokenizer,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import s2s.neighbour_index as neighbour_index

    folder = model_folder(tmp_path, tokenizer)
    data = write_tsv(tmp_path / "train.tsv", TRAIN_PAIRS)
    monkeypatch.setattr(neighbour_index, "CHUNK_PAIRS", 64)
    whole = build_index(folder, [data], bytes_per_vector=4, progress=False, log=lambda message: None)
    shutil.rmtree(folder / INDEX_FOLDER)
    monkeypatch.setattr(neighbour_index, "_chunk_states", interrupted_at(3, neighbour_index._chunk_states))
    with pytest.raises(KeyboardInterrupt):
        build_index(folder, [data], bytes_per_vector=4, progress=False, log=lambda message: None)
    assert not (folder / INDEX_FOLDER).exists() and (folder / PARTIAL_FOLDER / "progress.json").exists()
    assert json.loads((folder / PARTIAL_FOLDER / "progress.json").read_text())["kept"] == 128
    messages: list[str] = []
    resumed = build_index(folder, [data], bytes_per_vector=4, progress=False, log=messages.append)
    assert messages[0].startswith("continuing a build: 128 of 300")
    assert resumed["pieces"] == whole["pieces"] and resumed["files"] == whole["files"]
    assert not (folder / PARTIAL_FOLDER).exists()


def test_the_cli_builds_an_index_samples_it_and_adds_neighbours_to_json_output(
        tmp_path: Path, tokenizer: Tokenizer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    folder = model_folder(tmp_path, tokenizer)
    data = write_tsv(tmp_path / "train.tsv", TRAIN_PAIRS)
    assert main(["index", "--model", str(folder), "--data", str(data), "--max-sentences", "100",
                 "--bytes-per-vector", "4", "--no-progress"]) == 0
    assert "indexed 100 pairs" in capsys.readouterr().out
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["neighbour_index"]["sentences"] == 100 and metrics["neighbour_index"]["sampled"]
    assert "recall_at_10" in metrics["neighbour_index"]
    monkeypatch.setattr("sys.stdin", io.StringIO("red cat runs\n"))
    assert main(["translate", "--model", str(folder), "--neighbours", "3"]) == 0
    (sentence,) = json.loads(capsys.readouterr().out)["sentences"]
    ids = sentence["hypotheses"][0]["ids"]
    assert [n["position"] for n in sentence["neighbours"]] == [p for p, i in enumerate(ids) if i != EOS_ID]
    assert all(len(n["neighbours"]) == 3 for n in sentence["neighbours"])


def test_the_page_the_gradio_endpoint_and_rest_answer_with_real_neighbours(indexed: tuple[Path, Path],
                                                                          tokenizer: Tokenizer) -> None:
    from fastapi.testclient import TestClient

    from s2s.catalog import ModelCatalog
    from s2s.rest import create_app
    from s2s.service import Service
    from s2s.ui.api import WhatIf
    from s2s.ui.linked_view import server_functions

    folder, _ = indexed
    shutil.copytree(folder, folder.parent / "catalog" / "en-fr")
    save_model(folder.parent / "catalog" / "en-fr-noindex", random_model(tokenizer.vocab_size), tokenizer)
    service = Service(ModelCatalog(folder.parent / "catalog", default="en-fr"))
    source, target = TRAIN_PAIRS[11]
    ids = tokenizer.encode(target) + [EOS_ID]
    (page,) = [f for f in server_functions(service) if f.__name__ == "neighbours"]
    answer = json.loads(page({"model": "en-fr", "source": source, "ids": ids, "side": "output", "position": 0, "k": 4}))
    found = answer["neighbours"]
    assert len(found["neighbours"]) == 4 and found["neighbours"][0]["target"] == target
    assert found["word"] == target.split()[0] and found["index"]["sentences"] == len(TRAIN_PAIRS)
    missing = json.loads(page({"model": "en-fr-noindex", "source": source, "ids": ids, "side": "output",
                               "position": 0}))
    assert "no neighbour index; build it with: python -m s2s index" in missing["error"]
    bad = json.loads(page({"model": "en-fr", "source": source, "ids": ids, "side": "output", "position": 99}))
    assert "position must be" in bad["error"]

    endpoint = WhatIf(service).neighbours("en-fr", source, side="source", position=0.0, k=3.0)
    assert len(endpoint["neighbours"]) == 3 and endpoint["side"] == "source"

    client = TestClient(create_app(service))
    response = client.post("/v1/neighbours", json={"model": "en-fr", "text": source, "ids": ids, "position": 0, "k": 4})
    assert response.status_code == 200 and response.json() == found
    assert client.post("/v1/neighbours", json={"text": source, "k": 0}).status_code == 422
    response = client.post("/v1/neighbours", json={"model": "en-fr-noindex", "text": source})
    assert response.status_code == 422 and "python -m s2s index" in response.json()["detail"][0]["msg"]


def test_a_model_without_attention_finds_neighbours_without_aligned_words(tmp_path: Path, tokenizer: Tokenizer) -> None:
    folder = tmp_path / "noattn"
    save_model(folder, random_model(tokenizer.vocab_size, attention="none", scale=2.0), tokenizer, fp16=False)
    build_index(folder, [write_tsv(tmp_path / "train.tsv", TRAIN_PAIRS)], bytes_per_vector=4, progress=False,
                log=lambda message: None)
    source, target = TRAIN_PAIRS[20]
    ids = tokenizer.encode(target) + [EOS_ID]
    found = Translator.load(folder).neighbours(source, ids, "output", 0, k=3)
    assert (found["neighbours"][0]["source"], found["neighbours"][0]["target"]) == (source, target)
    assert all(n["source_word"] is None and n["target_word"] is not None for n in found["neighbours"])


def test_pairs_with_carriage_returns_and_line_separators_round_trip(tmp_path: Path, tokenizer: Tokenizer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A training line may hold "\\r", U+2028 or U+0085 inside it (the data is read with "\\n" alone
    ending a line): the index keeps each pair whole, when built at once and when resumed."""
    folder = model_folder(tmp_path, tokenizer)
    odd = [("red\rcat", "cat\rred"), ("big\u2028dog", "dog\u2028big"), ("the\x85bird", "bird\x85the")]
    data = write_tsv(tmp_path / "train.tsv", (odd + TRAIN_PAIRS[:40]) * 2)
    build_index(folder, [data], bytes_per_vector=4, progress=False, log=lambda message: None)
    assert NeighbourIndex.load(folder).pairs[:3] == odd
    shutil.rmtree(folder / INDEX_FOLDER)
    monkeypatch.setattr(neighbour_index, "CHUNK_PAIRS", 43)
    real = neighbour_index._chunk_states
    monkeypatch.setattr(neighbour_index, "_chunk_states", interrupted_at(2, real))
    with pytest.raises(KeyboardInterrupt):
        build_index(folder, [data], bytes_per_vector=4, progress=False, log=lambda message: None)
    monkeypatch.setattr(neighbour_index, "_chunk_states", real)
    build_index(folder, [data], bytes_per_vector=4, progress=False, log=lambda message: None)  # resumed
    pairs = NeighbourIndex.load(folder).pairs
    assert pairs[:3] == odd and pairs[43:46] == odd


def test_the_staleness_check_reads_the_weights_in_memory_not_the_file(indexed: tuple[Path, Path],
                                                                       tokenizer: Tokenizer) -> None:
    folder, _ = indexed
    translator = Translator.load(folder)  # the weights the index was built for
    config = json.loads((folder / "config.json").read_text())
    retrained = random_model(tokenizer.vocab_size, scale=2.0, seed=9, **{
        k: v for k, v in config.items() if k in ("arch", "encoder_layers", "decoder_layers", "attention_heads",
                                                 "feedforward_dim")})
    save_model(folder, retrained, tokenizer, fp16=False)  # the file changes; the translator's weights do not
    assert translator.neighbours(TRAIN_PAIRS[0][0], [EOS_ID], "source", 0)["neighbours"]
    with pytest.raises(NeighbourIndexError, match="stale"):
        Translator.load(folder).neighbours(TRAIN_PAIRS[0][0], [EOS_ID], "source", 0)
