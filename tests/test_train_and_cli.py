"""Training and the command line, end to end on a reverse-the-words task."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import s2s
from s2s.cli import main
from tests.conftest import TINY_TRAIN_OPTIONS, TINY_TRANSFORMER_OPTIONS, reverse_task, write_tsv

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s2s", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def log_records(folder: Path, event: str) -> list[dict]:
    lines = (folder / "train_log.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["event"] == event]


@pytest.fixture(scope="module")
def trained(reverse_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "model"
    train, dev = reverse_data
    assert main(["train", "--train", str(train), "--dev", str(dev), "--out", str(out), "--max-steps", "60",
                 "--valid-every", "30", "--seed", "3", *TINY_TRAIN_OPTIONS]) == 0
    return out


def test_training_lowers_the_loss_and_writes_a_complete_folder(trained: Path) -> None:
    losses = [r["loss"] for r in log_records(trained, "train")]
    assert losses[-1] < 0.7 * losses[0]
    validations = log_records(trained, "validation")
    assert [v["step"] for v in validations] == [30, 60]
    assert validations[-1]["dev_loss"] < validations[0]["dev_loss"]
    for name in ("config.json", "model.safetensors", "spm.model", "metrics.json", "README.md", "train_state.pt"):
        assert (trained / name).exists(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 60 and metrics["dev"]["bleu"] >= 0
    profile = metrics["training_profile"]  # what the explorer compares an input with
    assert profile["sentences"] == 400 and 1 <= profile["source_pieces"]["p50"] <= profile["source_pieces"]["p99"]
    assert "python -m s2s train" in (trained / "README.md").read_text()


def test_resume_continues_exactly_where_it_stopped(reverse_data: tuple[Path, Path], tmp_path: Path) -> None:
    train, dev = reverse_data
    common = ["train", "--train", str(train), "--dev", str(dev), "--valid-every", "4", "--seed", "5",
              "--teacher-forcing", "0.5", *TINY_TRAIN_OPTIONS]
    assert main([*common, "--out", str(tmp_path / "whole"), "--max-steps", "8"]) == 0
    assert main([*common, "--out", str(tmp_path / "split"), "--max-steps", "4"]) == 0
    # The resumed run names only its new budget: every other setting comes from the saved run.
    assert main(["train", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "split"),
                 "--max-steps", "8", "--resume"]) == 0
    whole = torch.load(tmp_path / "whole" / "train_state.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "train_state.pt", weights_only=True)
    assert split["progress"]["step"] == whole["progress"]["step"] == 8
    for name, tensor in whole["model"].items():
        torch.testing.assert_close(split["model"][name], tensor, msg=name)
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert metrics["train"]["teacher_forcing"] == 0.5 and metrics["train"]["max_steps"] == 8
    assert "--teacher-forcing 0.5" in metrics["command"]  # the card keeps the first run's full command
    assert [r["step"] for r in log_records(tmp_path / "split", "resume")] == [4]


def test_init_from_fine_tunes_the_given_model_and_its_card_counts_both_runs(trained: Path,
                                                                           reverse_data: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    train, dev = reverse_data
    out = tmp_path / "tuned"
    # --embedding-dim 48 is ignored: the architecture is the starting model's.
    assert main(["train", "--train", str(train), "--dev", str(dev), "--out", str(out), "--init-from", str(trained),
                 "--max-steps", "2", "--valid-every", "2", "--log-every", "1", "--seed", "3",
                 *TINY_TRAIN_OPTIONS, "--embedding-dim", "48"]) == 0
    assert (out / "spm.model").read_bytes() == (trained / "spm.model").read_bytes()
    assert json.loads((out / "config.json").read_text()) == json.loads((trained / "config.json").read_text())
    # The same seed and data: a fresh run's first loss is the random model's; this one starts trained.
    first_loss = log_records(out, "train")[0]["loss"]
    assert first_loss < 0.7 * log_records(trained, "train")[0]["loss"]
    assert first_loss < 1.5 * log_records(trained, "train")[-1]["loss"]
    start = json.loads((out / "metrics.json").read_text())["initialised_from"]
    assert start["model"] == str(trained) and start["steps"] == 60
    assert f"started from the weights of {trained}, itself trained 60 steps" in (out / "README.md").read_text()


def test_init_from_refuses_a_missing_model_and_resume(trained: Path, reverse_data: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    train, dev = reverse_data
    common = ["--train", str(train), "--dev", str(dev), "--max-steps", "1"]
    missing = run_cli("train", *common, "--out", str(tmp_path / "a"), "--init-from", str(tmp_path / "nothing"))
    assert missing.returncode != 0 and "no model folder at" in missing.stderr
    both = run_cli("train", *common, "--out", str(trained), "--init-from", str(trained), "--resume")
    assert both.returncode != 0 and "pass only one of them" in both.stderr


def test_a_second_run_into_the_same_folder_needs_resume(trained: Path, reverse_data: tuple[Path, Path]) -> None:
    train, dev = reverse_data
    result = run_cli("train", "--train", str(train), "--dev", str(dev), "--out", str(trained), "--max-steps", "1")
    assert result.returncode == 2 and "--resume" in result.stderr


def test_translate_reads_stdin_and_writes_one_line_per_input(trained: Path) -> None:
    result = run_cli("translate", "--model", str(trained), "--strategy", "beam", "--beam-size", "4", "--nbest", "2",
                     stdin="red cat\n\nbig dog runs\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""
    assert len(lines[0].split("\t")) == 2


def test_the_command_imports_torch_with_the_collector_off_and_keeps_its_objects_frozen() -> None:
    # `import s2s` loads nothing heavy, so `python -m s2s` can import torch under long_lived_imports:
    # the collector is back on after it, and torch's objects sit in the permanent generation.
    code = ("import gc, runpy, sys\nimport s2s\nprint('torch' in sys.modules)\nsys.argv = ['s2s', '--help']\n"
            "try:\n    runpy.run_module('s2s', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, gc.isenabled(), gc.get_freeze_count() > 50_000)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    words = result.stdout.split()  # False, the command's help, then True True True
    assert words[0] == "False" and words[-3:] == ["True", "True", "True"], result.stderr


def test_translate_returns_every_sentence_of_a_paragraph(trained: Path) -> None:
    result = run_cli("translate", "--model", str(trained), "--format", "json", "--strategy", "greedy",
                     stdin="red cat. big dog runs. the bird!\nred cat\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(r["sentences"]) for r in records] == [3, 1]
    text = run_cli("translate", "--model", str(trained), "--strategy", "greedy",
                   stdin="red cat. big dog runs. the bird!\n")
    assert text.stdout.rstrip("\n") == records[0]["text"]


def test_translate_json_lines_carry_the_full_result(trained: Path) -> None:
    result = run_cli("translate", "--model", str(trained), "--format", "json", "--strategy", "greedy",
                     stdin="red cat\nthe bird\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in records] == ["red cat", "the bird"]
    assert records[0]["sentences"][0]["hypotheses"][0]["attention"]


def test_translate_scores_given_translations_and_attributes_outputs(trained: Path, tmp_path: Path) -> None:
    greedy = run_cli("translate", "--model", str(trained), "--strategy", "greedy", "--no-split-sentences",
                     stdin="red cat\nbig dog runs\n").stdout.splitlines()
    targets = tmp_path / "targets.txt"
    targets.write_text("\n".join(greedy) + "\n", encoding="utf-8")
    scored = run_cli("translate", "--model", str(trained), "--score-target", str(targets), "--format", "json",
                     "--strategy", "greedy", stdin="red cat\nbig dog runs\n")
    assert scored.returncode == 0, scored.stderr
    records = [json.loads(line) for line in scored.stdout.splitlines()]
    assert [r["hypotheses"][0]["text"] for r in records] == greedy
    saliency = run_cli("translate", "--model", str(trained), "--saliency", "input_x_gradient", stdin="red cat\n")
    (record,) = [json.loads(line) for line in saliency.stdout.splitlines()]
    assert len(record["saliency"][0]["relevance"]) == len(record["sentences"][0]["hypotheses"][0]["ids"])
    misaligned = run_cli("translate", "--model", str(trained), "--score-target", str(targets), stdin="red cat\n")
    assert misaligned.returncode == 2 and "must be aligned" in misaligned.stderr


def test_translate_learns_the_reverse_task(reverse_data: tuple[Path, Path], tmp_path: Path) -> None:
    train, dev = reverse_data
    out = tmp_path / "model"
    assert main(["train", "--train", str(train), "--dev", str(dev), "--out", str(out), "--max-steps", "600",
                 "--valid-every", "300", "--seed", "1", *TINY_TRAIN_OPTIONS]) == 0
    translator = s2s.load(out)
    for source, target in reverse_task(10, seed=99):
        assert translator.translate(source, strategy="beam", beam_size=3)["text"] == target


def test_bad_settings_on_the_command_line_give_a_clear_error(trained: Path) -> None:
    result = run_cli("translate", "--model", str(trained), "--beam-size", "0", stdin="red cat\n")
    assert result.returncode == 2
    assert "beam_size" in result.stderr and "Traceback" not in result.stderr
    missing = run_cli("translate", "--model", str(trained.parent / "missing"), stdin="x\n")
    assert missing.returncode == 2 and "missing" in missing.stderr


def test_evaluate_prints_bleu_chrf_and_speed_for_each_decoding(trained: Path, reverse_data: tuple[Path, Path]
                                                              ) -> None:
    _, dev = reverse_data
    result = run_cli("evaluate", "--model", str(trained), "--data", str(dev), "--beam-size", "1", "3")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()[1:]
    assert header.split() == ["decoding", "BLEU", "chrF", "sent/s"]
    assert [" ".join(r.split()[:-3]) for r in rows] == ["greedy", "beam 1", "beam 3"]


@pytest.mark.parametrize("weights", ["bf16-output", "int8"])
def test_weights_option_translates_and_labels_evaluate_rows(trained: Path, reverse_data: tuple[Path, Path],
                                                            weights: str) -> None:
    result = run_cli("translate", "--model", str(trained), "--weights", weights, stdin="red cat\nbig dog runs\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == ""
    _, dev = reverse_data
    result = run_cli("evaluate", "--model", str(trained), "--data", str(dev), "--beam-size", "3", "--weights", weights)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[2:]
    assert [" ".join(r.split()[:-3]) for r in rows] == [f"greedy {weights}", f"beam 3 {weights}"]


def test_int8_weights_refuse_saliency_before_translating(trained: Path) -> None:
    result = run_cli("translate", "--model", str(trained), "--weights", "int8", "--saliency", stdin="red cat\n")
    assert result.returncode != 0
    assert "--saliency needs gradients, which int8 weights have not" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_evaluate_uses_every_reference_of_a_repeated_source(trained: Path, tmp_path: Path) -> None:
    translator = s2s.load(trained)
    source = "red cat eats the small bird"
    output = translator.translate(source, strategy="greedy")["text"]
    data = write_tsv(tmp_path / "multi.tsv", [(source, "something else entirely"), (source, output)])
    result = run_cli("evaluate", "--model", str(trained), "--data", str(data), "--beam-size", "1", "--no-greedy")
    assert "(1 sources" in result.stdout
    assert result.stdout.splitlines()[-1].split()[2] == "100.00"


def test_training_data_may_be_two_gzipped_line_aligned_files(tmp_path: Path) -> None:
    pairs = reverse_task(100, seed=4)
    for suffix, column in (("src", 0), ("tgt", 1)):
        with gzip.open(tmp_path / f"train.{suffix}.gz", "wt", encoding="utf-8") as handle:
            handle.write("".join(p[column] + "\n" for p in pairs))
    dev = write_tsv(tmp_path / "dev.tsv", reverse_task(5, seed=5))
    result = run_cli("train", "--train", str(tmp_path / "train.src.gz"), str(tmp_path / "train.tgt.gz"),
                     "--dev", str(dev), "--out", str(tmp_path / "m"), "--max-steps", "2", *TINY_TRAIN_OPTIONS)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["data"]["train_pairs_used"] == 100


def test_malformed_training_lines_are_reported_with_their_line_number(tmp_path: Path) -> None:
    pairs = reverse_task(60, seed=6)
    lines = [f"{s}\t{t}" for s, t in pairs]
    lines[9] = "no tab on this line"
    lines[19] = "\tempty source"
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(lines) + "\n")
    dev = write_tsv(tmp_path / "dev.tsv", reverse_task(5, seed=7))
    result = run_cli("train", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "m"),
                     "--max-steps", "1", *TINY_TRAIN_OPTIONS)
    assert result.returncode == 0, result.stderr
    assert f"{train}:10:" in result.stderr and f"{train}:20:" in result.stderr
    garbage = tmp_path / "garbage.tsv"
    garbage.write_text("just words\n" * 20)
    failed = run_cli("train", "--train", str(garbage), "--dev", str(dev), "--out", str(tmp_path / "g"))
    assert failed.returncode == 2 and "malformed" in failed.stderr


@pytest.mark.parametrize("command", ["train", "translate", "evaluate", "toy-data", "card"])
def test_every_command_has_help(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0 and "usage" in result.stdout


def test_config_file_sets_options_and_the_command_line_overrides_it(reverse_data: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    train, dev = reverse_data
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"attention": "luong-general", "rnn_type": "lstm"},
                                  "train": {"max_steps": 3, "valid_every": 3, "seed": 9}}))
    assert main(["train", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "m"), "--config",
                 str(config), "--max-steps", "2", *TINY_TRAIN_OPTIONS]) == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["model"]["attention"] == "luong-general" and metrics["model"]["rnn_type"] == "lstm"
    assert metrics["train"]["seed"] == 9 and metrics["training"]["steps"] == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"attention": "telepathy"}}))
    result = run_cli("train", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "b"),
                     "--config", str(bad))
    assert result.returncode == 2 and "attention" in result.stderr


def test_schedules() -> None:
    from s2s.config import TrainConfig
    from s2s.train import Progress, learning_rate, teacher_forcing_ratio

    config = TrainConfig(teacher_forcing=1.0, teacher_forcing_final=0.6, teacher_forcing_steps=100,
                         lr=1e-3, warmup_steps=10, min_lr=1e-4)
    assert [teacher_forcing_ratio(config, s) for s in (0, 50, 100, 500)] == pytest.approx([1.0, 0.8, 0.6, 0.6])
    assert learning_rate(config, Progress(step=4)) == pytest.approx(5e-4)
    assert learning_rate(config, Progress(step=50)) == pytest.approx(1e-3)
    assert learning_rate(config, Progress(step=50, lr_scale=0.01)) == pytest.approx(1e-4)

    linear = TrainConfig(lr=1e-3, warmup_steps=10, min_lr=1e-4, lr_schedule="linear", max_time=100.0)
    rates = [learning_rate(linear, Progress(step=50, elapsed=t, lr_scale=0.01)) for t in (0, 50, 100, 150)]
    assert rates == pytest.approx([1e-3, 5.5e-4, 1e-4, 1e-4])  # the plateau scale plays no part
    assert learning_rate(linear, Progress(step=4, elapsed=50)) == pytest.approx(5.5e-4 / 2)
    # A step budget sets the pace whatever the time taken: the same run on a slower machine.
    stepped = TrainConfig(lr=1e-3, warmup_steps=10, min_lr=1e-4, lr_schedule="linear", max_steps=200, max_time=100.0)
    rates = [learning_rate(stepped, Progress(step=s, elapsed=t)) for s, t in ((50, 90), (100, 10), (200, 0), (300, 0))]
    assert rates == pytest.approx([7.75e-4, 5.5e-4, 1e-4, 1e-4])
    with pytest.raises(ValueError, match="max_steps or max_time"):
        TrainConfig(lr_schedule="linear").validate()
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="cosine").validate()


def test_a_transformer_trains_and_heads_measures_every_head_into_the_card(reverse_data: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    train, dev = reverse_data
    out = tmp_path / "transformer"
    assert main(["train", "--train", str(train), "--dev", str(dev), "--out", str(out), "--max-steps", "40",
                 "--valid-every", "20", "--seed", "3", *TINY_TRAIN_OPTIONS, *TINY_TRANSFORMER_OPTIONS]) == 0
    assert json.loads((out / "config.json").read_text())["arch"] == "transformer"
    assert "Transformer (pre-layer-norm" in (out / "README.md").read_text()
    result = run_cli("heads", "--model", str(out), "--data", str(dev))
    assert result.returncode == 0, result.stderr
    table = json.loads((out / "metrics.json").read_text())["head_importance"]
    assert len(table["heads"]) == 3 * 2 * 4  # encoder, decoder and cross heads of 2 layers x 4 heads
    for name, row in table["heads"].items():
        assert row["loss"] == pytest.approx(table["baseline_bleu"] - row["bleu"], abs=0.01), name
    card = (out / "README.md").read_text()
    assert "## Head importance" in card and "| cross 1 |" in card
    rnn = run_cli("heads", "--model", str(ROOT / "checkpoints" / "en-fr"), "--data", str(dev))
    assert rnn.returncode == 2 and "RNN" in rnn.stderr
