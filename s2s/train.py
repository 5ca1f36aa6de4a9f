"""Training, as one straight loop: data -> tokenizer -> model -> batches -> validation -> checkpoints.

Output folder ``out``:
- ``config.json``, ``model.safetensors``, ``spm.model``: the best model so far (by dev BLEU),
  a complete checkpoint folder that ``s2s.load`` reads;
- ``train_state.pt``: the last state (fp32 weights, optimiser, progress, RNG), written at every
  validation and when training stops or is interrupted (Ctrl-C, SIGTERM); ``--resume`` continues
  from it exactly: same data order, same random draws;
- ``train_log.jsonl``: one JSON object per logged event (training and validation metrics, resumes);
- ``probes.jsonl`` (with ``--probe``): at every validation, the probe sentence's greedy output and
  its attention, to watch the alignment form;
- ``metrics.json`` and ``README.md``: the figures and the model card.

On resume the model architecture and tokenizer come from ``out``; the training settings are the
``config`` given, which the command line builds from the run's saved settings and the options it
names, so ``--resume --max-time 9000`` extends a budget and changes nothing else. The first run's
command stays in the card; each resume is logged with its own command.

Teacher forcing below 1 uses two-pass scheduled sampling (Mihaylova & Carpuat 2019): a first
pass without gradient predicts every position, then each decoder input is replaced by the
previous prediction with probability 1 - ratio, and the second pass learns from that input.
It keeps the whole target in one RNN call instead of a Python loop over time steps.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import platform
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .alignment import aligned_pairs, forced_alignment_accuracy
from .architectures import build_model
from .card import write_card
from .checkpoint import METRICS_FILE, TOKENIZER_FILE, atomic_write, load_model, read_metrics, save_model, write_json
from .config import ModelConfig, TrainConfig, from_dict, read_json
from .data import Batch, bucket_batches, group_references, make_batch, read_pairs
from .distributed import Cluster
from .distributed import start as start_cluster
from .distributed import stop as stop_cluster
from .evaluate import corpus_scores
from .familiarity import length_profile
from .hardware import autocast, check_precision
from .model import EncoderDecoder, evaluating
from .tokenizer import BOS_ID, PAD_ID, Tokenizer
from .toy import read_alignments
from .translator import DecodeSettings, Translator

STATE_FILE = "train_state.pt"
LOG_FILE = "train_log.jsonl"
PROBE_FILE = "probes.jsonl"
ALIGNMENT_SAMPLE = 500  # dev pairs whose forced attention is scored against the gold alignment
TOKENIZER_SAMPLE = 400_000  # sentences used to train sentencepiece


@dataclasses.dataclass
class Progress:
    """Where training stands; saved in ``train_state.pt`` as plain values."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed: float = 0.0  # wall-clock seconds over all runs, validation included (the --max-time budget)
    step_seconds: float = 0.0  # seconds spent in training steps only (for tokens per second)
    target_tokens: int = 0
    best_bleu: float = -1.0  # of the saved model, over every validation
    best_step: int = 0
    schedule_best_bleu: float = -1.0  # over the scheduled validations only (every valid_every steps)
    bad_validations: int = 0  # scheduled validations since schedule_best_bleu
    lr_bad_validations: int = 0  # since the last learning-rate decay or improvement
    lr_scale: float = 1.0
    runs: int = 0  # how many times training was started (1 + resumes)
    finished_reason: str = ""


def teacher_forcing_ratio(config: TrainConfig, step: int) -> float:
    """Linear decay from ``teacher_forcing`` to ``teacher_forcing_final`` over ``teacher_forcing_steps``."""
    fraction = min(1.0, step / max(1, config.teacher_forcing_steps))
    return config.teacher_forcing + fraction * (config.teacher_forcing_final - config.teacher_forcing)


def learning_rate(config: TrainConfig, progress: Progress) -> float:
    """Linear warm-up, then the plateau-decayed rate or, with ``lr_schedule="linear"``, a rate that
    falls in a straight line from ``lr`` to ``min_lr`` as ``progress.step`` reaches ``max_steps``
    or, without a step budget, as ``progress.elapsed`` reaches ``max_time`` (never below ``min_lr``
    either way). A step budget gives the same run on any machine; a time budget gives a faster
    machine more steps."""
    warmup = min(1.0, (progress.step + 1) / max(1, config.warmup_steps))
    if config.lr_schedule == "linear":
        done = progress.step / config.max_steps if config.max_steps else progress.elapsed / config.max_time
        remaining = max(0.0, 1.0 - done)
        return (config.min_lr + (config.lr - config.min_lr) * remaining) * warmup
    return max(config.min_lr, config.lr * progress.lr_scale) * warmup


def scheduled_inputs(model: EncoderDecoder, batch: Batch, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Decoder inputs [B, T] where each gold token after <s> is replaced by the model's own
    previous prediction with probability 1 - ratio (first pass, no gradient)."""
    if ratio >= 1.0:
        return batch.target_in
    with torch.no_grad():
        logits, _ = model(batch.source, batch.source_lengths, batch.target_in)
    predicted = torch.cat([batch.target_in[:, :1], logits.argmax(-1)[:, :-1]], dim=1)
    replace = torch.rand(batch.target_in.shape, generator=generator).to(batch.target_in.device) >= ratio
    replace[:, 0] = False
    replace &= batch.target_in != PAD_ID
    return torch.where(replace, predicted, batch.target_in)


def batch_loss(model: torch.nn.Module, batch: Batch, target_in: torch.Tensor, label_smoothing: float,
               per_tokens: float | None = None) -> torch.Tensor:
    """Cross-entropy (label-smoothed, padding ignored) summed over the batch and divided by
    ``per_tokens`` (default: the batch's target tokens, the mean per token). A rank of a
    distributed job divides by global tokens / world size, so that DDP's average over ranks is
    the mean per token of the whole global batch."""
    logits, _ = model(batch.source, batch.source_lengths, target_in)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch.target_out.reshape(-1),
                           ignore_index=PAD_ID, label_smoothing=label_smoothing,
                           reduction="sum") / (per_tokens or batch.target_tokens)


@torch.no_grad()
def dev_loss(model: EncoderDecoder, batches: Sequence[Batch]) -> float:
    """Cross-entropy per target token on the dev set, without label smoothing (call it under
    ``evaluating(model)``: validation owns the mode)."""
    total, tokens = 0.0, 0
    for batch in batches:
        total += float(batch_loss(model, batch, batch.target_in, 0.0)) * batch.target_tokens
        tokens += batch.target_tokens
    return total / max(1, tokens)


def encode_pairs(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]], max_len: int
                 ) -> tuple[list[list[int]], list[list[int]], int]:
    """Ids of each side; pairs longer than ``max_len`` pieces on either side are dropped (counted)."""
    sources = tokenizer.encode_batch([s for s, _ in pairs])
    targets = tokenizer.encode_batch([t for _, t in pairs])
    kept = [(s, t) for s, t in zip(sources, targets) if 0 < len(s) < max_len and 0 < len(t) < max_len]
    return [s for s, _ in kept], [t for _, t in kept], len(pairs) - len(kept)


def _log(out: Path, record: dict[str, Any], name: str = LOG_FILE) -> None:
    with open(out / name, "a", encoding="utf-8") as log:
        log.write(json.dumps(record, ensure_ascii=False) + "\n")


def probe_snapshot(translator: Translator, probe: str, step: int) -> dict[str, Any]:
    """The greedy output of ``probe`` now: its text, pieces and attention [T, S] (None without
    attention), rounded to 4 decimals."""
    result = translator.translate(probe, DecodeSettings(strategy="greedy", split_sentences=False).validate())
    sentence = result["sentences"][0] if result["sentences"] else {"source_pieces": [], "hypotheses": []}
    best = sentence["hypotheses"][0] if sentence["hypotheses"] else {"text": "", "pieces": [], "attention": None}
    attention = best["attention"]
    return {"step": step, "source": probe, "text": best["text"], "source_pieces": sentence["source_pieces"],
            "pieces": best["pieces"],
            "attention": None if attention is None else [[round(a, 4) for a in row] for row in attention]}


def _save_state(out: Path, model: EncoderDecoder, optimizer: torch.optim.Optimizer, progress: Progress,
                generator: torch.Generator, cluster: Cluster) -> None:
    """Rank 0 writes the state; the random-number states of every rank go with it."""
    cuda_rng = torch.cuda.get_rng_state(cluster.device) if cluster.device.type == "cuda" else None
    rank_rng = cluster.gather((torch.get_rng_state(), generator.get_state(), cuda_rng))
    if not cluster.is_main:
        return
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "progress": dataclasses.asdict(progress),
        "torch_rng": torch.get_rng_state(),
        "sampling_rng": generator.get_state(),
        "rank_rng": rank_rng,  # [(torch_rng, sampling_rng, cuda_rng or None)] per rank
    }
    atomic_write(out / STATE_FILE, lambda tmp: torch.save(state, tmp))


def _read_output(out: Path) -> tuple[Tokenizer, ModelConfig]:
    """The tokenizer and the architecture of the run in ``out``."""
    tokenizer = Tokenizer.load(out / TOKENIZER_FILE)
    return tokenizer, from_dict(ModelConfig, read_json(out / "config.json"), str(out / "config.json"))


def _prepare_output(out: Path, resume: bool, model_config: ModelConfig, config: TrainConfig,
                    train_pairs: Sequence[tuple[str, str]], say: Callable[[str], None],
                    start: tuple[EncoderDecoder, Tokenizer] | None = None) -> tuple[Tokenizer, ModelConfig]:
    """Fresh run: train the tokenizer and fix the vocabulary, or take both from ``start`` (the
    model and tokenizer a fine-tuning run starts from). Resume: read both back from ``out``."""
    if resume:
        if not (out / STATE_FILE).exists():
            raise FileNotFoundError(f"cannot resume: missing file {out / STATE_FILE}")
        return _read_output(out)
    if (out / STATE_FILE).exists():
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it "
                              "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if start is not None:
        model, tokenizer = start
        tokenizer.save(out / TOKENIZER_FILE)
        write_json(out / "config.json", vars(model.config))
        return tokenizer, model.config
    say(f"training sentencepiece ({config.vocab_size} pieces) ...")
    rng = random.Random(config.seed)
    sample = rng.sample(list(train_pairs), min(len(train_pairs), TOKENIZER_SAMPLE // 2))
    tokenizer = Tokenizer.train([text for pair in sample for text in pair], config.vocab_size)
    tokenizer.save(out / TOKENIZER_FILE)
    model_config = dataclasses.replace(model_config, vocab_size=tokenizer.vocab_size).validate()
    write_json(out / "config.json", vars(model_config))
    return tokenizer, model_config


def train(model_config: ModelConfig, config: TrainConfig, train_paths: Sequence[Path], dev_paths: Sequence[Path],
          out: Path, resume: bool = False, command: str = "", show_progress: bool = True,
          dev_alignments: Path | None = None, init_from: Path | None = None) -> dict[str, Any]:
    """Train a model into ``out``; returns the final metrics. ``dev_alignments`` (one gold
    alignment per dev pair, see ``s2s.toy``) adds the alignment accuracy to every validation.
    ``init_from`` (a model folder) starts a fresh run from that model's weights, tokenizer and
    architecture instead of random weights (fine-tuning); the optimiser and schedule start anew.
    Under torchrun every process calls this; see ``s2s.distributed``."""
    config.validate()
    if init_from is not None and resume:
        raise ValueError("--init-from starts a new run; --resume continues one: pass only one of them")
    cluster = start_cluster(config.device)
    try:
        trainer = Trainer(cluster, model_config, config, train_paths, dev_paths, Path(out), resume, command,
                          show_progress, dev_alignments, None if init_from is None else Path(init_from))
        trainer.run()
        metrics = trainer.finish()
        # Every process is done before any tears the group down: a rank leaving while the other
        # still talks to it was seen to abort ("terminate called without an active exception").
        cluster.barrier()
        return metrics
    finally:
        stop_cluster(cluster)


class Trainer:
    """One training run into ``out``, in named parts, each readable on its own:

    ``__init__`` sets up (data, tokenizer, model, optimiser, the run's metrics) and, with
    ``resume``, continues a saved state (``resume_from_state``); ``run`` is the loop: ``step``
    per batch, ``validate`` every ``valid_every`` steps, ``agreed_stop`` after each; ``finish``
    validates once more if needed and writes the state, the metrics and the card. The order of
    random draws is that of an uninterrupted run, so a resumed run ends with the same weights.
    """

    def __init__(self, cluster: Cluster, model_config: ModelConfig, config: TrainConfig,
                 train_paths: Sequence[Path], dev_paths: Sequence[Path], out: Path, resume: bool, command: str,
                 show_progress: bool, dev_alignments: Path | None, init_from: Path | None = None) -> None:
        self.cluster, self.config, self.out, self.show_progress = cluster, config, out, show_progress
        self.device = cluster.device
        check_precision(config.precision, self.device)
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        train_pairs, dev_pairs, skipped = self._read_data(train_paths, dev_paths)
        gold = read_alignments(dev_alignments) if dev_alignments else []
        if dev_alignments and len(gold) != len(dev_pairs):
            raise ValueError(f"{dev_alignments} has {len(gold)} alignments for {len(dev_pairs)} dev pairs: "
                             "one line per dev pair is needed")
        # A fine-tuning run's starting model, checked whole before anything is written; every rank
        # reads the same weights.
        start = load_model(init_from) if init_from is not None else None
        if start is not None:
            self.say(f"starting from the weights, tokenizer and architecture of {init_from}")
        if cluster.is_main:
            self.tokenizer, model_config = _prepare_output(out, resume, model_config, config, train_pairs, self.say,
                                                           start)
        cluster.barrier()
        if not cluster.is_main:  # rank 0 has written (or kept) the tokenizer and the architecture
            self.tokenizer, model_config = _read_output(out)
        torch.manual_seed(config.seed)
        self.model = build_model(model_config)
        if start is not None:
            self.model.load_state_dict(start[0].state_dict())
        self.model = self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.progress = Progress()
        self.generator = torch.Generator().manual_seed(config.seed)  # scheduled-sampling draws
        if cluster.rank > 0:  # the same initial weights, but each rank its own dropout and sampling draws
            torch.manual_seed(config.seed * 1000 + cluster.rank)
            self.generator.manual_seed(config.seed * 1000 + cluster.rank)
        if resume:
            self.resume_from_state(command)
        self.progress.runs += 1
        self._encode_data(train_pairs, dev_pairs, gold)
        self.translator = Translator(self.model, self.tokenizer, name=out.name)
        self.valid_settings = DecodeSettings(strategy="greedy" if config.valid_beam_size == 1 else "beam",
                                             beam_size=config.valid_beam_size, split_sentences=False).validate()
        self.metrics = self._start_metrics(model_config, train_paths, dev_paths, skipped, resume, command, init_from)
        self.stop_signals: list[str] = []
        self.say(f"{len(self.sources)} training pairs ({self.dropped} longer than {config.max_len} pieces skipped), "
                 f"{len(self.dev_sources)} dev sources, {self.model.parameter_count():,} parameters, "
                 f"vocabulary {self.tokenizer.vocab_size}")

    # ------------------------------------------------------------------ set up

    def say(self, message: str) -> None:
        if self.cluster.is_main:
            tqdm.write(message, file=sys.stderr)

    def log(self, record: dict[str, Any]) -> None:
        if self.cluster.is_main:
            _log(self.out, record)

    def _read_data(self, train_paths: Sequence[Path], dev_paths: Sequence[Path]
                   ) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
        """The training and dev pairs, and how many malformed lines were skipped (the first 20 said)."""
        skipped_lines: list[str] = []
        train_pairs = read_pairs(train_paths, on_skip=skipped_lines.append)
        dev_pairs = read_pairs(dev_paths, on_skip=skipped_lines.append)
        for message in skipped_lines[:20]:
            self.say(message)
        if len(skipped_lines) > 20:
            self.say(f"... {len(skipped_lines) - 20} more malformed lines skipped")
        return train_pairs, dev_pairs, len(skipped_lines)

    def resume_from_state(self, command: str) -> None:
        """Weights, optimiser, progress and every rank's random-number state from ``train_state.pt``."""
        state = torch.load(self.out / STATE_FILE, weights_only=True, map_location="cpu")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        saved = state["progress"]
        saved.setdefault("schedule_best_bleu", saved["best_bleu"])  # states saved before the field existed
        self.progress = Progress(**saved)
        self.progress.finished_reason = ""
        rank_rng = state.get("rank_rng") or [(state["torch_rng"], state["sampling_rng"], None)]
        if len(rank_rng) == self.cluster.world_size:
            torch_rng, sampling_rng, cuda_rng = rank_rng[self.cluster.rank]
            torch.set_rng_state(torch_rng)
            self.generator.set_state(sampling_rng)
            if cuda_rng is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(cuda_rng, self.device)
        else:
            self.say(f"note: the run was saved by {len(rank_rng)} process(es) and resumes on "
                     f"{self.cluster.world_size}: the same batches and weights, but new dropout and sampling draws")
        self.say(f"resumed at step {self.progress.step} (epoch {self.progress.epoch}, "
                 f"{self.progress.elapsed:.0f} s trained)")
        self.log({"event": "resume", "step": self.progress.step, "elapsed": round(self.progress.elapsed, 1),
                  "command": command, "processes": self.cluster.world_size})

    def _encode_data(self, train_pairs: Sequence[tuple[str, str]], dev_pairs: Sequence[tuple[str, str]],
                     gold: Sequence[Any]) -> None:
        """Piece ids of the training pairs, the dev batches and references, the aligned dev sample."""
        config = self.config
        self.sources, self.targets, self.dropped = encode_pairs(self.tokenizer, train_pairs, config.max_len)
        if not self.sources:
            raise ValueError(f"no training pair has fewer than max_len={config.max_len} pieces on both sides")
        self.lengths = [(len(s), len(t)) for s, t in zip(self.sources, self.targets)]
        self.dev_sources, self.dev_references = group_references(dev_pairs)
        dev_src_ids, dev_tgt_ids, _ = encode_pairs(self.tokenizer, dev_pairs, 10**9)
        self.dev_batches = [make_batch([dev_src_ids[i] for i in chunk], [dev_tgt_ids[i] for i in chunk],
                                       BOS_ID).to(self.device)
                            for chunk in bucket_batches([(len(s), len(t)) for s, t in zip(dev_src_ids, dev_tgt_ids)],
                                                        config.batch_tokens, seed=0)]
        self.aligned = aligned_pairs(self.tokenizer, dev_pairs[:ALIGNMENT_SAMPLE], gold[:ALIGNMENT_SAMPLE]) \
            if gold else []

    def _start_metrics(self, model_config: ModelConfig, train_paths: Sequence[Path], dev_paths: Sequence[Path],
                       skipped: int, resume: bool, command: str, init_from: Path | None) -> dict[str, Any]:
        """The run's settings and data in ``metrics.json``, written now so that --resume finds them
        even after a hard kill. A run started from another model records that model's own training
        (``initialised_from``), so the card can give the time and steps of both together."""
        metrics = read_metrics(self.out) if resume else {}
        if init_from is not None:
            earlier = read_metrics(init_from)
            metrics["initialised_from"] = {"model": str(init_from), "command": earlier.get("command", ""),
                                           **{key: earlier.get("training", {}).get(key)
                                              for key in ("steps", "seconds", "best_step")}}
        device = self.device
        metrics.update({
            "model": vars(model_config), "parameters": self.model.parameter_count(), "train": vars(self.config),
            "data": {"train": [str(p) for p in train_paths], "dev": [str(p) for p in dev_paths],
                     "train_pairs_used": len(self.sources), "train_pairs_too_long": self.dropped,
                     "malformed_lines_skipped": skipped},
            "training_profile": length_profile([len(s) for s in self.sources]),
            "command": metrics.get("command", command) if resume else command,
            "hardware": (f"{torch.cuda.get_device_name(device)} GPU" if device.type == "cuda" else
                         f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)"),
        })
        if self.cluster.distributed:
            metrics["processes"] = self.cluster.world_size
        if self.cluster.is_main:
            write_json(self.out / METRICS_FILE, metrics)
        return metrics

    # ------------------------------------------------------------------ validation and stopping

    def validate(self, scheduled: bool) -> None:
        """Dev loss and BLEU; save the model when BLEU is the best so far. Only a scheduled
        validation (every ``valid_every`` steps) moves the early-stopping and learning-rate
        counters, so the extra one at the end of a run leaves training exactly where it was and
        a resumed run follows the same path as an uninterrupted one."""
        started = time.perf_counter()
        model, progress, config = self.model, self.progress, self.config
        with evaluating(model):
            loss = dev_loss(model, self.dev_batches)
            # Search runs on the CPU: a GPU run validates a CPU copy of the weights.
            self.translator.model = model if self.device.type == "cpu" else copy.deepcopy(model).cpu()
            results = self.translator.translate_batch(self.dev_sources, self.valid_settings, details=False)
            scores = corpus_scores([r["text"] for r in results], self.dev_references)
            if self.aligned:
                accuracy = forced_alignment_accuracy(model, self.aligned)
                scores["alignment_accuracy"] = None if accuracy is None else round(accuracy, 4)
            if config.probe:
                _log(self.out, probe_snapshot(self.translator, config.probe, progress.step), PROBE_FILE)
        improved = scores["bleu"] > progress.best_bleu
        if improved:
            progress.best_bleu, progress.best_step = scores["bleu"], progress.step
            save_model(self.out, model, self.tokenizer, fp16=config.fp16_weights)
            self.metrics["dev"] = {"loss": round(loss, 4), **scores, "step": progress.step,
                                   "decoding": "greedy" if config.valid_beam_size == 1 else
                                   f"beam {config.valid_beam_size}", "train_seconds": round(progress.elapsed, 1)}
        if scheduled:
            self._count_validation(scores["bleu"])
        self.log({"event": "validation", "step": progress.step, "epoch": progress.epoch,
                  "dev_loss": round(loss, 4), "dev_ppl": round(math.exp(min(loss, 50)), 2), **scores,
                  "best_bleu": progress.best_bleu, "lr": learning_rate(config, progress),
                  "elapsed": round(progress.elapsed, 1), "seconds": round(time.perf_counter() - started, 1),
                  **({} if scheduled else {"end_of_run": True})})
        progress.elapsed += time.perf_counter() - started
        self.say(f"step {progress.step}: dev loss {loss:.3f}  BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}"
                 f"{'  (best, saved)' if improved else ''}")

    def _count_validation(self, bleu: float) -> None:
        """The early-stopping and learning-rate counters after a scheduled validation."""
        progress, config = self.progress, self.config
        if bleu > progress.schedule_best_bleu:
            progress.schedule_best_bleu = bleu
            progress.bad_validations = progress.lr_bad_validations = 0
            return
        progress.bad_validations += 1
        progress.lr_bad_validations += 1
        if progress.lr_bad_validations >= config.lr_patience:
            progress.lr_scale *= config.lr_decay
            progress.lr_bad_validations = 0

    def validate_everywhere(self, scheduled: bool) -> None:
        """Rank 0 validates; every rank then continues with its progress (counters, learning rate)."""
        if self.cluster.is_main:
            self.validate(scheduled)
        self.progress = Progress(**self.cluster.share(dataclasses.asdict(self.progress)))

    def stop_reason(self) -> str:
        """Which budget this process has reached ("" = none)."""
        config, progress = self.config, self.progress
        if config.max_steps and progress.step >= config.max_steps:
            return "max_steps"
        if config.max_time and progress.elapsed >= config.max_time:
            return "max_time"
        if progress.bad_validations >= config.early_stopping_patience:
            return "early_stopping"
        return ""

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM or Ctrl-C only ask to stop: the loop honours it at the next step boundary, so
        the saved state is exactly what the next step would have seen. A second Ctrl-C stops at
        once, without saving (the state of the last validation stays)."""
        if self.stop_signals and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop_signals.append(signal.Signals(signum).name)

    def agreed_stop(self) -> str:
        """Why training stops now, the same on every rank ("" = go on): a stop signal on any
        rank, or a budget (steps, time, early stopping) reached on any rank."""
        signalled, limit = self.cluster.any_of(bool(self.stop_signals), bool(self.stop_reason()))
        return "interrupted" if signalled else (self.stop_reason() or "max_time") if limit else ""

    # ------------------------------------------------------------------ the loop

    def step(self, trainer: torch.nn.Module, chunk: list[int]) -> dict[str, float]:
        """One optimiser step on the global batch ``chunk`` (indices of training pairs), of which
        this rank learns its share; returns the loss, gradient norm, teacher-forcing ratio and
        the global batch's target tokens."""
        config, progress = self.config, self.progress
        # A rank whose share is empty (a batch with fewer sentences than ranks) runs its first
        # sentence with weight 0.
        share = self.cluster.shard(chunk)
        weight = 1.0 if share else 0.0
        share = share or chunk[:1]
        batch = make_batch([self.sources[i] for i in share], [self.targets[i] for i in share], BOS_ID).to(self.device)
        global_tokens = sum(len(self.targets[i]) + 1 for i in chunk)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(config, progress)
        ratio = teacher_forcing_ratio(config, progress.step)
        with autocast(config.precision, self.device):
            loss = weight * batch_loss(trainer, batch, scheduled_inputs(self.model, batch, ratio, self.generator),
                                       config.label_smoothing, per_tokens=global_tokens / self.cluster.world_size)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.clip_norm)
        self.optimizer.step()
        progress.step += 1
        progress.batch_in_epoch += 1
        progress.target_tokens += global_tokens
        return {"loss": loss.item(), "grad_norm": float(grad_norm), "ratio": ratio, "tokens": global_tokens}

    def run(self) -> None:
        """Train until a budget, early stopping or a stop signal; validates and saves the state
        every ``valid_every`` steps."""
        config, cluster, progress = self.config, self.cluster, self.progress
        trainer = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                          else None) if cluster.distributed else self.model
        previous_handlers = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.model.train()
        bar = tqdm(total=config.max_steps or None, initial=self.progress.step,
                   disable=not (self.show_progress and cluster.is_main), unit="step", dynamic_ncols=True,
                   file=sys.stderr)
        window_tokens, window_start, last_logged = 0, time.perf_counter(), self.progress.step
        try:
            stop = self.agreed_stop()
            while not stop:
                if config.max_epochs and self.progress.epoch >= config.max_epochs:
                    stop = "max_epochs"
                    break
                batches = bucket_batches(self.lengths, config.batch_tokens, seed=config.seed * 1000 + self.progress.epoch)
                while self.progress.batch_in_epoch < len(batches):
                    step_start = time.perf_counter()
                    done = self.step(trainer, batches[self.progress.batch_in_epoch])
                    progress = self.progress
                    progress.elapsed += time.perf_counter() - step_start
                    progress.step_seconds += time.perf_counter() - step_start
                    window_tokens += done["tokens"]
                    tokens_per_second = window_tokens / max(1e-9, time.perf_counter() - window_start)
                    bar.update(1)
                    bar.set_postfix(loss=f"{done['loss']:.3f}", tok_s=f"{tokens_per_second:.0f}", epoch=progress.epoch)
                    if progress.step - last_logged >= config.log_every or progress.step == 1:
                        self.log({"event": "train", "step": progress.step, "epoch": progress.epoch,
                                  "loss": round(done["loss"], 4), "grad_norm": round(done["grad_norm"], 3),
                                  "lr": learning_rate(config, progress), "teacher_forcing": round(done["ratio"], 3),
                                  "tokens_per_second": round(tokens_per_second, 1),
                                  "elapsed": round(progress.elapsed, 1)})
                        window_tokens, window_start, last_logged = 0, time.perf_counter(), progress.step
                    if progress.step % config.valid_every == 0:
                        self.validate_everywhere(scheduled=True)
                        _save_state(self.out, self.model, self.optimizer, self.progress, self.generator, cluster)
                    stop = self.agreed_stop()
                    if stop:
                        break
                else:
                    self.progress.epoch += 1
                    self.progress.batch_in_epoch = 0
            self.progress.finished_reason = stop
        except KeyboardInterrupt:
            self.say("stopped at once: the state saved at the last validation is kept; continue with --resume")
            raise
        finally:
            bar.close()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)

    def finish(self) -> dict[str, Any]:
        """The end of a run: a last validation unless the last step had one, the state, the
        metrics and the card. Returns the metrics."""
        progress, config = self.progress, self.config
        if progress.finished_reason == "interrupted":
            self.say(f"interrupted ({', '.join(self.stop_signals) or 'on another process'}): saving the training "
                     "state; continue with --resume")
        elif progress.step != progress.best_step and progress.step % config.valid_every != 0:
            self.validate_everywhere(scheduled=False)
        progress = self.progress
        _save_state(self.out, self.model, self.optimizer, progress, self.generator, self.cluster)
        self.metrics["training"] = {
            "steps": progress.step, "epochs_completed": progress.epoch, "seconds": round(progress.elapsed, 1),
            "target_tokens": progress.target_tokens,
            "tokens_per_second": round(progress.target_tokens / max(1e-9, progress.step_seconds), 1),
            "stopped_because": progress.finished_reason, "best_step": progress.best_step, "runs": progress.runs}
        if self.cluster.is_main:
            write_json(self.out / METRICS_FILE, self.metrics)
            write_card(self.out)
        self.say(f"stopped ({progress.finished_reason}) at step {progress.step}; best dev BLEU "
                 f"{progress.best_bleu:.2f} at step {progress.best_step}; model in {self.out}")
        return self.metrics
