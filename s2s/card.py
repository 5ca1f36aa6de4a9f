"""Model cards: ``README.md`` of a checkpoint folder, rendered from its ``metrics.json``.

The card is generated, so it can never disagree with the figures. Training writes the
architecture, data, command and dev scores; ``python -m s2s evaluate --save-as NAME`` adds
evaluation tables. Free-text fields are read from ``metrics.json`` when present:
``title``, ``description``, ``data_attribution``, ``weaknesses`` (list) and ``notes`` (list).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import CARD_FILE, METRICS_FILE, atomic_write, read_metrics, write_json


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(row.get(key, "")) for key, _ in columns) + " |" for row in rows]
    return lines


def render_card(metrics: dict[str, Any], name: str) -> str:
    model = metrics.get("model", {})
    train = metrics.get("train", {})
    training = metrics.get("training", {})
    lines = [f"# {metrics.get('title', name)}", ""]
    if metrics.get("description"):
        lines += [metrics["description"], ""]
    lines += ["## Data", ""]
    data = metrics.get("data", {})
    lines += [f"- train: {', '.join(data.get('train', []))} ({data.get('train_pairs_used', '?')} pairs used, "
              f"{data.get('train_pairs_too_long', 0)} longer than {train.get('max_len', '?')} pieces skipped)",
              f"- dev: {', '.join(data.get('dev', []))}"]
    profile = metrics.get("training_profile", {}).get("source_pieces")
    if profile:
        lines += [f"- training sources: median {profile['p50']} pieces, 95% have {profile['p95']} or fewer, "
                  f"99% have {profile['p99']} or fewer (the explorer notes a longer input)"]
    if metrics.get("data_attribution"):
        lines += [f"- licence and attribution: {metrics['data_attribution']}"]
    lines += ["", "## Model", "", _architecture_line(model),
              f"- joint sentencepiece vocabulary of {model.get('vocab_size')} pieces (byte fallback)",
              f"- {metrics.get('parameters', 0):,} parameters", "",
              "## Training", "",
              f"- command: `{metrics.get('command', '')}`",
              f"- seed {train.get('seed')}, label smoothing {train.get('label_smoothing')}, "
              f"learning rate {train.get('lr')}, batches of {train.get('batch_tokens')} target tokens",
              f"- {training.get('steps', '?')} steps in {training.get('seconds', 0) / 60:.1f} minutes "
              f"({training.get('tokens_per_second', '?')} target tokens/s) on {metrics.get('hardware', '?')}; "
              f"stopped because: {training.get('stopped_because', '?')}; best dev BLEU at step "
              f"{training.get('best_step', '?')}; {training.get('runs', 1)} run(s) (a run continues the last with --resume)"]
    start = metrics.get("initialised_from")
    if start:
        earlier_seconds = start.get("seconds") or 0
        lines += [f"- started from the weights of {start.get('model')}, itself trained {start.get('steps', '?')} steps "
                  f"in {earlier_seconds / 60:.1f} minutes (`{start.get('command', '')}`): "
                  f"{(training.get('seconds', 0) + earlier_seconds) / 60:.1f} minutes of training in all"]
    dev = metrics.get("dev")
    if dev:
        lines += [f"- dev during training ({dev.get('decoding')}): BLEU {dev.get('bleu')}, chrF {dev.get('chrf')}, "
                  + (f"exact match {dev['exact']}%, " if dev.get("exact") is not None else "")  # older runs: none
                  + f"loss {dev.get('loss')}"
                  + (f", alignment accuracy {dev['alignment_accuracy']}" if dev.get("alignment_accuracy") is not None
                     else "")]
    for split, rows in metrics.get("evaluation", {}).items():
        lines += ["", f"## Evaluation: {split}", ""]
        lines += _table(rows, [("decoding", "decoding"), ("bleu", "BLEU"), ("chrf", "chrF"),
                               ("sentences_per_second", "sentences/s (in-process, batches of 64)")])
    if metrics.get("baselines"):
        lines += ["", "## Compared with other systems", ""]
        lines += _table(metrics["baselines"], [("system", "system"), ("split", "data"), ("bleu", "BLEU"),
                                               ("chrf", "chrF")])
    by_length = metrics.get("bleu_by_length")
    if by_length:
        lines += ["", f"## BLEU by source length ({by_length.get('split')}, {by_length.get('decoding')})", ""]
        models = list(by_length["models"])
        lines += _table([{"words": row["words"], "sentences": row["sentences"],
                          **{name: by_length["models"][name][i]["bleu"] for name in models}}
                         for i, row in enumerate(by_length["models"][models[0]])],
                        [("words", "source words"), ("sentences", "sentences")] + [(m, f"BLEU {m}") for m in models])
        if by_length.get("figure"):
            lines += ["", f"Figure: `{by_length['figure']}`"]
    if metrics.get("head_importance"):
        lines += ["", *_head_importance_lines(metrics["head_importance"])]
    if metrics.get("neighbour_index"):
        lines += ["", *_neighbour_index_lines(metrics["neighbour_index"], name)]
    if metrics.get("speed"):
        lines += ["", "## Speed", ""] + [f"- {label}: {value}" for label, value in metrics["speed"].items()]
    for title, key in (("Known weaknesses", "weaknesses"), ("Notes", "notes")):
        if metrics.get(key):
            lines += ["", f"## {title}", ""] + [f"- {item}" for item in metrics[key]]
    return "\n".join(lines) + "\n"


def update_metrics(folder: Path, values: dict[str, Any]) -> None:
    """Merge ``values`` into ``folder/metrics.json`` and re-render the card from it."""
    metrics = read_metrics(folder)
    metrics.update(values)
    write_json(Path(folder) / METRICS_FILE, metrics)
    write_card(folder)


def write_card(folder: Path) -> None:
    """(Re)write ``folder/README.md`` from ``folder/metrics.json``."""
    folder = Path(folder)
    text = render_card(read_metrics(folder), folder.name)
    atomic_write(folder / CARD_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _architecture_line(model: dict[str, Any]) -> str:
    """The card's one-line description of the architecture in ``model`` (a ModelConfig as a dict)."""
    shared = f"tied: {model.get('tie_embeddings')}, dropout {model.get('dropout')}"
    if model.get("arch") == "transformer":
        return (f"- Transformer (pre-layer-norm, sinusoidal positions): {model.get('encoder_layers')} encoder and "
                f"{model.get('decoder_layers')} decoder layers, d_model {model.get('embedding_dim')}, "
                f"{model.get('attention_heads')} heads, d_ff {model.get('feedforward_dim')}, {shared}")
    return (f"- {model.get('encoder_layers')}-layer bidirectional {str(model.get('rnn_type', '')).upper()} encoder "
            f"({model.get('encoder_hidden')} per direction), {model.get('decoder_layers')}-layer decoder "
            f"({model.get('decoder_hidden')}), attention `{model.get('attention')}`, embeddings "
            f"{model.get('embedding_dim')}, {shared}")


def _head_importance_lines(table: dict[str, Any]) -> list[str]:
    """The card's head-importance section: one row per layer, one column per head, each cell the
    BLEU lost when that head alone is off (``python -m s2s heads``)."""
    lines = [f"## Head importance ({table.get('split', 'dev')}, {table.get('decoding')}, baseline BLEU "
             f"{table.get('baseline_bleu')})", "",
             "BLEU lost when one head alone is switched off (Michel et al. 2019); negative: better without it. "
             "Measured with `python -m s2s heads`.", ""]
    rows: dict[str, dict[str, Any]] = {}
    for name, values in table.get("heads", {}).items():
        kind, layer, head = name.split(".")
        rows.setdefault(f"{kind} {layer}", {"layer": f"{kind} {layer}"})[f"head {head}"] = values["loss"]
    columns = sorted({key for row in rows.values() for key in row if key != "layer"})
    return lines + _table(list(rows.values()), [("layer", "attention, layer")] + [(c, c) for c in columns])


def _neighbour_index_lines(index: dict[str, Any], name: str) -> list[str]:
    """The card's section on the shipped neighbour index (``python -m s2s index``)."""
    recall = index.get("recall_at_10", {})
    sample = (f"a seeded sample (seed {index.get('seed')}) of {index.get('sentences'):,} of the "
              f"{index.get('pairs_in_data'):,} pairs" if index.get("sampled") else f"all {index.get('sentences'):,} pairs")
    return ["## Neighbour index (seen in training)", "",
            f"- `index/`: {sample} of {', '.join(index.get('data', []))}, "
            f"{index.get('pieces', {}).get('source', 0):,} source and {index.get('pieces', {}).get('output', 0):,} "
            f"output pieces; {index.get('bytes', 0) / 1e6:.1f} MB with the pairs' text",
            f"- FAISS {index.get('quantiser', {}).get('source')} (source, {index.get('dimensions', {}).get('source')}-d "
            f"encoder states) and {index.get('quantiser', {}).get('output')} (output, "
            f"{index.get('dimensions', {}).get('output')}-d decoder states), cosine similarity",
            f"- recall@10 against exact search on {index.get('recall_queries')} queries: source "
            f"{recall.get('source', {}).get('quantised')} quantised, {recall.get('source', {}).get('reranked')} "
            f"re-ranked; output {recall.get('output', {}).get('quantised')} quantised, "
            f"{recall.get('output', {}).get('reranked')} re-ranked (the app re-ranks 5 x k candidates exactly)",
            f"- built in {index.get('built_seconds')} s on this project's 2-core CPU with "
            f"`python -m s2s index --model checkpoints/{name} --data DATA"
            f"{' --max-sentences ' + str(index.get('requested_sentences')) if index.get('sampled') else ''}`"]
