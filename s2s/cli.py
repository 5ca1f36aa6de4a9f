"""Command line: ``python -m s2s {train,translate,evaluate,heads,index,toy-data,serve,card} --help``.

A thin layer: every command parses its arguments and calls the library.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from .card import update_metrics
from .checkpoint import read_metrics
from .config import ModelConfig, TrainConfig, from_dict, read_json
from .data import group_references, read_pairs
from .precision import DEFAULT_WEIGHTS, WEIGHTS, require_gradients
from .saliency import METHODS
from .toy import DEV_PAIRS, TASK_EXAMPLES, TASKS, TRAIN_PAIRS, write_task
from .tokenizer import EOS_ID
from .translator import DecodeSettings, Translator, make_settings


def _add_dataclass_options(parser: argparse.ArgumentParser, cls: type, title: str, skip: tuple[str, ...] = ()) -> None:
    """One ``--option`` per field of ``cls``; defaults stay None so a --config file can fill them."""
    group = parser.add_argument_group(title)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        value_type = int if default is None else type(default)  # the only optional setting is an int seed
        if isinstance(default, bool):
            group.add_argument(flag, dest=f"{cls.__name__}.{field.name}", default=None,
                               action=argparse.BooleanOptionalAction, help=f"(default: {default})")
        else:
            group.add_argument(flag, dest=f"{cls.__name__}.{field.name}", default=None, type=value_type,
                               metavar=value_type.__name__.upper(), help=f"(default: {default})")


def _dataclass_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    prefix = f"{cls.__name__}."
    return {key[len(prefix):]: value for key, value in vars(args).items()
            if key.startswith(prefix) and value is not None}


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--weights", choices=tuple(WEIGHTS), default=DEFAULT_WEIGHTS,
                        help="how the model holds its weights: bf16-output keeps the output layer in bfloat16 "
                             "(faster on CPUs with native bfloat16: AVX512-BF16, AMX), int8 every linear layer "
                             "and RNN (dynamic quantization; no saliency); both may change outputs slightly "
                             f"(default: {DEFAULT_WEIGHTS})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m s2s", description="Attention encoder-decoder: train, "
                                     "translate and evaluate.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model", description="Train a model on parallel data "
                                "(TSV source<TAB>target, .gz accepted, or two line-aligned files).")
    train.add_argument("--train", nargs="+", type=Path, required=True, metavar="FILE", help="TSV or SRC TGT files")
    train.add_argument("--dev", nargs="+", type=Path, required=True, metavar="FILE", help="TSV or SRC TGT files")
    train.add_argument("--out", type=Path, required=True, help="model folder to write")
    train.add_argument("--config", type=Path, help='JSON {"model": {...}, "train": {...}}; options override it')
    train.add_argument("--dev-alignments", type=Path, metavar="FILE",
                       help="gold word alignments of the dev pairs (one line each, 0-3 1-2 ...): adds the "
                            "attention's alignment accuracy to every validation (toy-data writes one)")
    train.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    train.add_argument("--init-from", type=Path, metavar="MODEL",
                       help="start from this model folder's weights, tokenizer and architecture (fine-tuning); "
                            "the model options are then ignored and the optimiser and schedule start anew")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    # The model's vocab_size is that of the trained tokenizer, set by the training's --vocab-size.
    _add_dataclass_options(train, ModelConfig, "model", skip=("vocab_size",))
    _add_dataclass_options(train, TrainConfig, "training")

    translate = commands.add_parser("translate", help="translate stdin to stdout, one sentence per line")
    _model_options(translate)
    translate.add_argument("--format", choices=["text", "json"], default="text",
                           help="text: best output (n-best joined by tabs); json: one full result per line")
    translate.add_argument("--batch-size", type=int, default=64)
    translate.add_argument("--score-target", type=Path, metavar="FILE",
                           help="instead of translating, score FILE's translations (one per line, aligned with "
                                "stdin) by force-decoding; text: log-prob<TAB>normalised<TAB>translation")
    translate.add_argument("--saliency", choices=METHODS, nargs="?", const="integrated_gradients",
                           help="also attribute each sentence's best output to its source (JSON lines)")
    translate.add_argument("--neighbours", type=int, metavar="K",
                           help="also the K nearest training pieces of every output piece of each sentence's best "
                                "output, from the model's neighbour index (JSON lines)")
    _add_dataclass_options(translate, DecodeSettings, "decoding (see s2s.DecodeSettings)")

    evaluate = commands.add_parser("evaluate", help="BLEU, chrF and speed for greedy and beam sizes")
    _model_options(evaluate)
    evaluate.add_argument("--data", nargs="+", type=Path, required=True, metavar="FILE", help="TSV or SRC TGT")
    evaluate.add_argument("--beam-size", nargs="+", type=int, default=[5], metavar="K")
    evaluate.add_argument("--no-greedy", action="store_true", help="skip the greedy row")
    evaluate.add_argument("--alpha", type=float, default=DecodeSettings().alpha)
    evaluate.add_argument("--coverage-penalty", type=float, default=DecodeSettings().coverage_penalty)
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--save-as", metavar="NAME", help="store the table in metrics.json and the model card")
    evaluate.add_argument("--outputs", type=Path, help="write the outputs of each row to FILE.<decoding>.txt")

    heads = commands.add_parser("heads", help="each Transformer head's importance: dev BLEU lost without it",
                                description="Switch each attention head off alone and measure the greedy BLEU "
                                            "lost on --data; stores the table in metrics.json and the card.")
    _model_options(heads)
    heads.add_argument("--data", nargs="+", type=Path, required=True, metavar="FILE", help="TSV or SRC TGT")
    heads.add_argument("--batch-size", type=int, default=64)
    heads.add_argument("--split", default="dev", help="the data's name in the card (default: dev)")

    index = commands.add_parser("index", help="index the training pairs' hidden states (the nearest-training-"
                                "sentences view)", description="Run the model over its training pairs (teacher-"
                                "forced) and store every source piece's encoder state and every target piece's "
                                "decoder state in MODEL/index/ (see s2s.neighbour_index). Streams the data; "
                                "run the same command again to continue a build cut off.")
    index.add_argument("--model", type=Path, required=True)
    index.add_argument("--data", nargs="+", type=Path, required=True, metavar="FILE", help="TSV or SRC TGT")
    index.add_argument("--max-sentences", type=int, help="index a seeded sample of this many pairs (default: all)")
    index.add_argument("--bytes-per-vector", type=int, default=32, help="product-quantisation code size")
    index.add_argument("--seed", type=int, default=1)
    index.add_argument("--no-progress", action="store_true", help="no progress bar")

    toy = commands.add_parser("toy-data", help="write a toy task's train/dev TSV and gold alignments",
                              description="Generate a toy task with a known alignment (see s2s.toy): "
                                          + "; ".join(f"{name}: {example}" for name, example in TASK_EXAMPLES.items()))
    toy.add_argument("task", choices=sorted(TASKS))
    toy.add_argument("--out", type=Path, required=True, help="folder for train.tsv, dev.tsv and dev.align")
    toy.add_argument("--train-size", type=int, default=TRAIN_PAIRS)
    toy.add_argument("--dev-size", type=int, default=DEV_PAIRS)
    toy.add_argument("--seed", type=int, default=1)

    serve = commands.add_parser("serve", help="serve the REST API alone (no web page): /v1/, LibreTranslate's routes",
                                description="Serve the REST API (s2s.rest) with uvicorn. Stateless: run any number of "
                                            "workers or replicas behind a load balancer. Models: $S2S_CHECKPOINTS; "
                                            "logins (HTTP Basic): --auth-file or $S2S_AUTH=user:password.")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes, each with its own copy of the models")
    serve.add_argument("--threads", type=int, help="torch threads per worker (default: the CPU cores divided "
                                                   "among the workers, so that they do not take turns on a core)")
    serve.add_argument("--auth-file", type=Path, help="file of user:password lines")

    card = commands.add_parser("card", help="set a model card's text fields and re-render its README.md",
                               description="Re-render README.md from metrics.json, after setting the given fields.")
    card.add_argument("--model", type=Path, required=True)
    card.add_argument("--title")
    card.add_argument("--description")
    card.add_argument("--data-attribution", help="licence and attribution of the training data")
    card.add_argument("--weakness", action="append", default=[], help="a known weakness (repeatable; replaces the list)")
    card.add_argument("--note", action="append", default=[], help="a note (repeatable; replaces the list)")
    return parser


def run_train(args: argparse.Namespace, argv: Sequence[str]) -> None:
    from .distributed import end_worker
    from .train import train  # imported here: tqdm and training code are not needed to translate

    file_values = read_json(args.config) if args.config else {}
    # A resumed run keeps its own training settings; --config and the command's options override them.
    saved_values = read_metrics(args.out).get("train", {}) if args.resume else {}
    model_values = {**file_values.get("model", {}), **_dataclass_values(args, ModelConfig)}
    train_values = {**saved_values, **file_values.get("train", {}), **_dataclass_values(args, TrainConfig)}
    model_config = from_dict(ModelConfig, model_values, "model settings")
    train_config = from_dict(TrainConfig, train_values, "training settings")
    command = "python -m s2s " + " ".join(shlex.quote(a) for a in argv if a != "--resume")
    train(model_config, train_config, args.train, args.dev, args.out, resume=args.resume,
          command=command, show_progress=not args.no_progress, dev_alignments=args.dev_alignments,
          init_from=args.init_from)
    end_worker()


def nbest_texts(result: dict[str, Any]) -> list[str]:
    """The i-th output of a text: the i-th hypothesis of each of its sentences, joined (a
    sentence with fewer hypotheses contributes its last)."""
    sentences = [s["hypotheses"] for s in result["sentences"]]
    count = max((len(hypotheses) for hypotheses in sentences), default=0)
    return [" ".join(hypotheses[min(i, len(hypotheses) - 1)]["text"] for hypotheses in sentences)
            for i in range(count)]


def run_score(translator: Translator, lines: list[str], target_file: Path, settings: DecodeSettings,
              as_json: bool) -> None:
    targets = [line.rstrip("\r\n") for line in target_file.read_text(encoding="utf-8").splitlines()]
    if len(targets) != len(lines):
        raise ValueError(f"{target_file} has {len(targets)} lines and stdin {len(lines)}: they must be aligned")
    for number, (source, target) in enumerate(zip(lines, targets), start=1):
        try:
            scored = translator.score(source, target, settings)
        except ValueError as error:
            print(f"warning: line {number}: {error}", file=sys.stderr)
            print(json.dumps({"source": source, "target": target, "error": str(error)}, ensure_ascii=False)
                  if as_json else "")
            continue
        hypothesis = scored["hypotheses"][0]
        print(json.dumps(scored, ensure_ascii=False) if as_json else
              f"{hypothesis['score']:.4f}\t{hypothesis['normalized_score']:.4f}\t{hypothesis['text']}")


def run_translate(args: argparse.Namespace) -> None:
    settings = make_settings(**_dataclass_values(args, DecodeSettings))
    if args.saliency:
        require_gradients(args.weights, "--saliency")
    translator = Translator.load(args.model, weights=args.weights)
    lines = [line.rstrip("\r\n") for line in sys.stdin]
    if args.score_target:
        run_score(translator, lines, args.score_target, settings, args.format == "json")
        return
    results = translator.translate_batch(lines, settings, batch_size=args.batch_size,
                                         details=args.format == "json" or bool(args.saliency or args.neighbours))
    for number, result in enumerate(results, start=1):
        notes = result["warnings"] + ([result["message"]] if result["message"] and lines[number - 1].strip() else [])
        for note in notes:
            print(f"warning: line {number}: {note}", file=sys.stderr)
        if args.saliency:
            result["saliency"] = [translator.saliency(s["source"], s["hypotheses"][0]["ids"], args.saliency)
                                  for s in result["sentences"]]
        if args.neighbours:
            for sentence in result["sentences"]:
                ids = sentence["hypotheses"][0]["ids"]
                sentence["neighbours"] = [
                    translator.neighbours(sentence["source"], ids, "output", position, args.neighbours)
                    for position in range(len(ids)) if ids[position] != EOS_ID]
        if args.format == "json" or args.saliency or args.neighbours:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print("\t".join(nbest_texts(result)))


def run_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import decoding_runs, evaluate_files, format_table

    translator = Translator.load(args.model, weights=args.weights)
    runs = decoding_runs(args.beam_size, args.alpha, args.coverage_penalty, greedy=not args.no_greedy)
    rows, count = evaluate_files(translator, args.data, runs, batch_size=args.batch_size)
    if args.weights != DEFAULT_WEIGHTS:
        for row in rows:
            row["decoding"] += f" {args.weights}"
    print(f"{args.model} on {' '.join(map(str, args.data))} ({count} sources, batches of {args.batch_size})")
    print(format_table(rows))
    if args.outputs:
        for row in rows:
            Path(f"{args.outputs}.{row['decoding'].replace(' ', '')}.txt").write_text(
                "\n".join(row["outputs"]) + "\n", encoding="utf-8")
    if args.save_as:
        evaluation = read_metrics(args.model).get("evaluation", {})
        name = args.save_as if args.weights == DEFAULT_WEIGHTS else f"{args.save_as}, {WEIGHTS[args.weights]}"
        evaluation[name] = [{key: value for key, value in row.items() if key != "outputs"} for row in rows]
        update_metrics(args.model, {"evaluation": evaluation})


def run_heads(args: argparse.Namespace) -> None:
    from .head_importance import head_importance

    translator = Translator.load(args.model, weights=args.weights)
    sources, references = group_references(read_pairs(args.data))
    table = head_importance(translator, sources, references, args.batch_size,
                            on_head=lambda name, loss: print(f"{name:<14} BLEU lost {loss:+.2f}", flush=True))
    print(f"baseline greedy BLEU {table['baseline_bleu']:.2f} on {len(sources)} sources")
    update_metrics(args.model, {"head_importance": table | {"split": args.split}})


def run_index(args: argparse.Namespace) -> None:
    from .neighbour_index import build_index

    if args.max_sentences is not None and args.max_sentences < 1:
        raise ValueError(f"--max-sentences must be at least 1, got {args.max_sentences}")
    manifest = build_index(args.model, args.data, args.max_sentences, args.seed, args.bytes_per_vector,
                           progress=not args.no_progress)
    print(f"indexed {manifest['sentences']:,} pairs ({manifest['pieces']['source']:,} source and "
          f"{manifest['pieces']['output']:,} output pieces) in {manifest['built_seconds']:.0f} s: "
          f"{manifest['bytes'] / 1e6:.1f} MB, recall@10 {manifest['recall_at_10']}")
    update_metrics(args.model, {"neighbour_index": {key: value for key, value in manifest.items() if key != "files"}})


def run_toy_data(args: argparse.Namespace) -> None:
    paths = write_task(args.task, args.out, args.train_size, args.dev_size, args.seed)
    print(f"wrote {', '.join(str(path) for path in paths.values())}\n"
          f"train with: python -m s2s train --train {paths['train']} --dev {paths['dev']} "
          f"--dev-alignments {paths['alignments']} --out MODEL_FOLDER")


def run_card(args: argparse.Namespace) -> None:
    fields = {key: getattr(args, key) for key in ("title", "description", "data_attribution")}
    fields.update(weaknesses=args.weakness or None, notes=args.note or None)
    update_metrics(args.model, {key: value for key, value in fields.items() if value is not None})


def run_serve(args: argparse.Namespace) -> None:
    import os

    import torch
    import uvicorn

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    threads = max(1, (os.cpu_count() or 1) // args.workers) if args.threads is None else args.threads
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch in every worker process uvicorn starts
    torch.set_num_threads(threads)  # one worker runs in this process
    if args.auth_file:
        if not args.auth_file.is_file():
            raise FileNotFoundError(f"no such file: {args.auth_file}")
        os.environ["S2S_AUTH_FILE"] = str(args.auth_file.resolve())  # read by every worker
    # After its graceful stop uvicorn re-sends SIGTERM to the handler before it: exit with 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    uvicorn.run("s2s.rest:create_app_from_environment", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", timeout_graceful_shutdown=30)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            run_train(args, argv)
        elif args.command == "translate":
            run_translate(args)
        elif args.command == "evaluate":
            run_evaluate(args)
        elif args.command == "heads":
            run_heads(args)
        elif args.command == "index":
            run_index(args)
        elif args.command == "toy-data":
            run_toy_data(args)
        elif args.command == "serve":
            run_serve(args)
        else:
            run_card(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
