"""Corpus evaluation: sacrebleu BLEU and chrF (cased, default tokenisation), plus speed.

A source that appears on several lines of the data is translated once and scored against
all of its targets (multi-reference BLEU/chrF).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import sacrebleu

from .data import group_references, read_pairs, reference_streams
from .translator import DecodeSettings, Translator


def corpus_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """BLEU, chrF and exact match (the percentage of outputs equal to one of their references) of
    ``hypotheses`` against per-sentence lists of references."""
    streams = reference_streams(references)
    exact = sum(hypothesis in options for hypothesis, options in zip(hypotheses, references))
    return {
        "bleu": round(sacrebleu.corpus_bleu(list(hypotheses), streams).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(list(hypotheses), streams).score, 2),
        "exact": round(100 * exact / max(1, len(hypotheses)), 2),
    }


def sentence_scores(hypothesis: str, references: Sequence[str]) -> dict[str, float]:
    """Sentence-level BLEU (exponential smoothing, sacrebleu's default) and chrF."""
    return {
        "bleu": round(sacrebleu.sentence_bleu(hypothesis, list(references)).score, 2),
        "chrf": round(sacrebleu.sentence_chrf(hypothesis, list(references)).score, 2),
    }


def strategy_label(settings: DecodeSettings) -> str:
    return "greedy" if settings.strategy == "greedy" else f"beam {settings.beam_size}"


def evaluate(translator: Translator, sources: Sequence[str], references: Sequence[Sequence[str]],
             runs: Sequence[DecodeSettings], batch_size: int = 64) -> list[dict[str, Any]]:
    """Translate ``sources`` once per settings in ``runs``; BLEU, chrF and sentences/second each."""
    rows = []
    for settings in runs:
        started = time.perf_counter()
        results = translator.translate_batch(list(sources), settings, batch_size=batch_size, details=False)
        seconds = time.perf_counter() - started
        outputs = [r["text"] for r in results]
        rows.append({"decoding": strategy_label(settings), **corpus_scores(outputs, references),
                     "sentences_per_second": round(len(sources) / seconds, 1), "outputs": outputs})
    return rows


def decoding_runs(beam_sizes: Sequence[int], alpha: float, coverage_penalty: float, greedy: bool = True
                  ) -> list[DecodeSettings]:
    """Greedy (if asked) then one beam search per size; each line of the data is one segment
    (its references are aligned to it), so it is not split into sentences."""
    common = {"alpha": alpha, "coverage_penalty": coverage_penalty, "split_sentences": False}
    runs = [DecodeSettings(strategy="greedy", **common).validate()] if greedy else []
    return runs + [DecodeSettings(strategy="beam", beam_size=k, **common).validate() for k in beam_sizes]


def evaluate_files(translator: Translator, data: Sequence[Path], runs: Sequence[DecodeSettings],
                   batch_size: int = 64) -> tuple[list[dict[str, Any]], int]:
    """Evaluate on a TSV file or two line-aligned files; returns the rows and the number of sources."""
    sources, references = group_references(read_pairs(data))
    return evaluate(translator, sources, references, runs, batch_size), len(sources)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'decoding':<10} {'BLEU':>6} {'chrF':>6} {'sent/s':>8}"]
    lines += [f"{r['decoding']:<10} {r['bleu']:>6.2f} {r['chrf']:>6.2f} {r['sentences_per_second']:>8.1f}" for r in rows]
    return "\n".join(lines)


LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, None))


def bleu_by_length(sources: Sequence[str], references: Sequence[Sequence[str]], outputs: Sequence[str],
                   buckets: Sequence[tuple[int, int | None]] = LENGTH_BUCKETS) -> list[dict[str, Any]]:
    """Corpus BLEU and chrF per bucket of source length in whitespace-separated words."""
    words = [len(source.split()) for source in sources]
    rows = []
    for low, high in buckets:
        members = [i for i, count in enumerate(words) if low <= count and (high is None or count <= high)]
        label = f"{low}-{high}" if high is not None else f"{low}+"
        if not members:
            rows.append({"words": label, "sentences": 0, "bleu": None, "chrf": None})
            continue
        scores = corpus_scores([outputs[i] for i in members], [references[i] for i in members])
        rows.append({"words": label, "sentences": len(members), **scores})
    return rows
