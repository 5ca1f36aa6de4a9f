"""Checkpoint folders: exact round trips, and clear errors that name the broken file."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import s2s
from s2s.checkpoint import save_model
from s2s.translator import Translator

SENTENCES = ["the big cat runs", "red bird", "dog eats the small green bird"]


def outputs(translator: Translator) -> list:
    return [(h["ids"], round(h["score"], 4), h["attention"])
            for result in translator.translate_batch(SENTENCES, strategy="beam", beam_size=3, nbest=2)
            for sentence in result["sentences"] for h in sentence["hypotheses"]]


def test_fp32_save_then_load_gives_identical_outputs(translator: Translator, tmp_path: Path) -> None:
    save_model(tmp_path, translator.model, translator.tokenizer, fp16=False)
    assert outputs(s2s.load(tmp_path)) == outputs(translator)


def test_fp16_checkpoint_round_trips_exactly(translator: Translator, tmp_path: Path) -> None:
    save_model(tmp_path / "a", translator.model, translator.tokenizer, fp16=True)
    loaded = s2s.load(tmp_path / "a")
    save_model(tmp_path / "b", loaded.model, loaded.tokenizer, fp16=True)
    assert outputs(s2s.load(tmp_path / "b")) == outputs(loaded)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


@pytest.fixture
def folder(translator: Translator, tmp_path: Path) -> Path:
    save_model(tmp_path, translator.model, translator.tokenizer)
    return tmp_path


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "spm.model"])
def test_missing_file_is_named(folder: Path, name: str) -> None:
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        s2s.load(folder)


@pytest.mark.parametrize("name, content", [
    ("config.json", b"{not json"), ("config.json", b'{"attention": "psychic"}'), ("config.json", b'[1, 2]'),
    ("config.json", b'{"hidden_everything": 3}'), ("config.json", b"[" * 100_000),
    ("model.safetensors", b"\x00" * 100), ("spm.model", b"garbage bytes"),
])
def test_corrupt_file_is_named(folder: Path, name: str, content: bytes) -> None:
    (folder / name).write_bytes(content)
    with pytest.raises(ValueError, match=name):
        s2s.load(folder)


def test_weights_that_do_not_fit_the_config_are_reported(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["decoder_hidden"] += 8
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model.safetensors"):
        s2s.load(folder)


class _Exploit:
    def __reduce__(self):  # runs on unpickling
        return (Path.touch, (Path(self.marker),))


def test_loading_never_executes_code_from_the_folder(folder: Path) -> None:
    marker = folder / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    (folder / "model.safetensors").write_bytes(pickle.dumps({"weights": exploit}))
    with pytest.raises(ValueError):
        s2s.load(folder)
    assert not marker.exists()


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        s2s.load(tmp_path / "nowhere")


@pytest.mark.parametrize("field, value, message", [
    ("decoder_hidden", 10**7, r"decoder_hidden must be an integer in \[1, 8192\], got 10000000"),
    ("encoder_layers", 1.5, "encoder_layers must be an integer"),
    ("embedding_dim", "256", "embedding_dim must be an integer"),
    ("tie_embeddings", "yes", "tie_embeddings must be true or false"),
    ("dropout", -0.1, "dropout must be a number"),
])
def test_an_absurd_config_is_refused_by_name_before_any_allocation(folder: Path, field: str, value,
                                                                   message: str) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, field: value}))
    with pytest.raises(ValueError, match=message) as error:
        s2s.load(folder)
    assert "config.json" in str(error.value)


def test_a_config_that_disagrees_with_the_stored_shapes_names_the_tensor(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "decoder_hidden": 4096}))
    with pytest.raises(ValueError, match=r"tensor decoder\.\S+ has shape \[\d+(, \d+)*\] but the config needs") \
            as error:
        s2s.load(folder)
    assert "model.safetensors" in str(error.value) and "config.json" in str(error.value)


def test_weights_with_nan_or_infinity_are_refused_with_the_tensor_s_name(folder: Path) -> None:
    from safetensors.torch import load_file, save_file
    state = load_file(str(folder / "model.safetensors"))
    name = sorted(state)[0]
    state[name][0] = float("nan")
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match=f"tensor {name} holds NaN"):
        s2s.load(folder)
