"""The Train tab: train a model on a toy task or on uploaded sentence pairs, and watch it learn.

A thin layer over ``s2s.jobs``: the job runs ``python -m s2s train`` in its own process, so
translations in the other tab go on, and closing the page does not stop it. While a job runs, a
timer reads its logs every two seconds and redraws the curves, the probe's attention animation
and the log tail. When the job ends its model is in the catalog, and the model pickers are
refreshed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Sequence

import gradio as gr
import plotly.graph_objects as go
from gradio.utils import get_upload_folder
from tqdm import tqdm

from ..admission import Busy, Gate
from ..catalog import ModelCatalog
from ..config import ATTENTION_TYPES, MIN_VOCAB_SIZE, RNN_TYPES
from ..jobs import RUNNING, Job, JobBoard
from ..toy import TASK_EXAMPLES
from ..train import LOG_FILE, PROBE_FILE
from ..training_plots import attention_animation, training_curves
from ..uploads import LIMITS_TEXT

REFRESH_SECONDS = 2.0
TOY, UPLOAD = "Toy task", "My sentence pairs"
INTRO = ("### Train your own model and watch its attention learn\n"
         "Pick a toy task (each has a known correct alignment, so the tab can score whether attention "
         "points at the right source word) or upload sentence pairs. Training runs in its own process: "
         "translations go on, and closing this page does not stop it. One job at a time per server.")


@dataclasses.dataclass
class TrainView:
    """What the tab shows of the latest job. ``signature`` (the job, its state and the sizes of its
    logs) tells whether anything was logged since the last view; the figures are None then."""

    status: str
    progress: str
    curves: go.Figure | None
    animation: go.Figure | None
    log: str
    running: bool
    signature: tuple


def _paths(files: Any) -> list[Path]:
    """Paths of a gr.File value (None, one file or a list; a path string or an object with .name)."""
    if not files:
        return []
    files = files if isinstance(files, list) else [files]
    return [Path(getattr(f, "name", f)) for f in files]


def _status_line(job: Job, status: dict[str, Any]) -> str:
    state = status["state"]
    lines = [f"**Job `{job.name}`: {state}.** {status.get('message', '') if state != RUNNING else ''}".strip()]
    if status.get("published"):
        lines.append(f"The best model is `{job.name}` in the explorer's model picker.")
    return "\n\n".join(line.replace("\n", "  \n") for line in lines)


def _progress_line(job: Job, records: Sequence[dict[str, Any]], running: bool) -> str:
    """A tqdm line of trained seconds against the budget (with the time left while it runs), with
    steps, speed and the best score."""
    budget = float(job.spec()["budget_seconds"])
    trained = min(job.trained_seconds(records), budget)
    # A finished job is done (100%), whether it used its whole budget or stopped early.
    total = budget if running else max(trained, 1.0)
    train = [r for r in records if r.get("event") == "train"]
    valid = [r for r in records if r.get("event") == "validation"]
    step = train[-1]["step"] if train else 0
    speed = f"{train[-1]['tokens_per_second']:,.0f} target tokens/s" if train else "starting"
    best = max(valid, key=lambda r: r["bleu"], default=None)
    meter = tqdm.format_meter(n=round(trained), total=round(total), elapsed=trained, ncols=60,
                              bar_format="{percentage:3.0f}%|{bar}| {elapsed} trained"
                              + (", {remaining} left" if running else f" of {budget / 60:.3g} minutes"))
    return (f"{meter} · step {step} · {speed}"
            + (f" · best dev BLEU {best['bleu']:.1f} (exact {best.get('exact', 0):.0f}%) at step {best['step']}"
               if best else ""))


def job_view(board: JobBoard, seen: tuple = ()) -> TrainView | None:
    """The latest job as the tab shows it; None when no job was ever started. The figures are
    drawn (and the probes read) only when the job's signature differs from ``seen``."""
    job = board.latest()
    if job is None:
        return None
    status = job.status()
    running = status["state"] == RUNNING
    signature = (job.name, status["state"], job.size(LOG_FILE), job.size(PROBE_FILE))
    records = job.records(LOG_FILE)
    changed = signature != seen
    return TrainView(status=_status_line(job, status), progress=_progress_line(job, records, running),
                     curves=training_curves(records) if changed else None,
                     animation=attention_animation(job.records(PROBE_FILE)) if changed else None,
                     log="\n".join(job.log_tail(15)), running=running, signature=signature)


def start_job(board: JobBoard, values: dict[str, Any], gate: Gate) -> str:
    """Start a job from the tab's values (reading an upload once ``gate`` admits it); returns the
    status line, or the reason nothing started."""
    toy = values["data"] == TOY
    sizes = {"embedding_dim": values["embedding_dim"], "encoder_hidden": values["hidden"],
             "decoder_hidden": 2 * (values["hidden"] or 0)}  # the encoder is bidirectional
    model = {"rnn_type": values["rnn_type"], "attention": values["attention"],
             **{key: int(value) for key, value in sizes.items() if value}}  # 0 = what fits the data
    train = {"max_time": 60.0 * float(values["minutes"] or 0), "probe": (values["probe"] or "").strip(),
             **({"vocab_size": int(values["vocab_size"])} if values["vocab_size"] else {})}
    uploaded = _paths(values["uploads"]) + _paths(values["dev_upload"])
    try:
        with gate.admit("upload"):
            job = board.start(values["name"], task=values["task"] if toy else "",
                              uploads=[] if toy else _paths(values["uploads"]),
                              dev_upload=(_paths(values["dev_upload"]) or [None])[0] if not toy else None,
                              model=model, train=train, overwrite=bool(values["overwrite"]))
    except (TypeError, ValueError, Busy) as error:
        return f"**Not started:** {error}"
    finally:
        discard_uploads(uploaded)
    return f"**Job `{job.name}` started.**"


def discard_uploads(paths: Sequence[Path]) -> None:
    """Delete the files Gradio received for this request, once read (the job keeps its own copy of
    the data, a refused upload keeps nothing); files outside Gradio's upload folder are left alone."""
    folder = Path(get_upload_folder()).resolve()
    for path in paths:
        path = Path(path).resolve()
        if folder in path.parents:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # Gradio puts each upload in a folder of its own
                path.parent.rmdir()


def build_train_tab(catalog: ModelCatalog, pickers: Sequence[gr.Dropdown], gate: Gate) -> dict[str, Any]:
    """The tab's components and events; ``pickers`` are the model dropdowns to refresh when a job
    ends; ``gate`` admits reading an upload. Returns the handlers by name (the tests call them)."""
    board = JobBoard(catalog.root)
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            data = gr.Radio([TOY, UPLOAD], value=TOY, label="Data", elem_id="train-data")
            task = gr.Dropdown([(f"{name}: {example}", name) for name, example in TASK_EXAMPLES.items()],
                               value="dates", label="Toy task", elem_id="train-task")
            uploads = gr.File(file_count="multiple", file_types=[".tsv", ".txt", ".gz"], visible=False,
                              label=f"Training data: {LIMITS_TEXT}")
            dev_upload = gr.File(file_types=[".tsv", ".txt", ".gz"], visible=False,
                                 label="Dev data (optional TSV; default: 5% of the data, at most 1,000 pairs)")
        with gr.Column(scale=2):
            rnn_type = gr.Radio(list(RNN_TYPES), value="gru", label="Recurrent cell")
            attention = gr.Dropdown(list(ATTENTION_TYPES), value="bahdanau", label="Attention")
            with gr.Row():
                embedding_dim = gr.Number(0, precision=0, minimum=0, maximum=1024, label="Embedding size (0 = fit)")
                hidden = gr.Number(0, precision=0, minimum=0, maximum=1024, label="Hidden size (0 = fit)")
                vocab_size = gr.Number(0, precision=0, minimum=0, maximum=32000,
                                       label=f"Vocabulary (0 = fit; else {MIN_VOCAB_SIZE}–32000 pieces)")
        with gr.Column(scale=2):
            with gr.Row():
                name = gr.Textbox(label="Model name", value="my-dates", elem_id="train-name")
                overwrite = gr.Checkbox(False, label="Overwrite a model of that name")
            minutes = gr.Slider(1, 60, value=2, step=1, label="Time budget (minutes)", elem_id="train-minutes")
            probe = gr.Textbox(label="Probe sentence (its attention is recorded at every validation; "
                                     "empty = the first dev sentence)", elem_id="train-probe")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train-start")
                stop = gr.Button("Stop", elem_id="train-stop")
                resume = gr.Button("Resume (for the budget again)", elem_id="train-resume")
    status = gr.Markdown(elem_id="train-status")
    progress = gr.Textbox(label="Progress", interactive=False, elem_id="train-progress")
    with gr.Row():
        curves = gr.Plot(label="Loss and dev scores", show_label=False, elem_id="train-curves")
        animation = gr.Plot(label="The probe's attention at every validation", show_label=False,
                            elem_id="train-animation")
    log = gr.Textbox(label="Log (last lines)", lines=6, max_lines=15, interactive=False, elem_id="train-log")
    seen = gr.State(())
    timer = gr.Timer(REFRESH_SECONDS, active=False)
    fields = {"data": data, "task": task, "uploads": uploads, "dev_upload": dev_upload, "rnn_type": rnn_type,
              "attention": attention, "embedding_dim": embedding_dim, "hidden": hidden, "vocab_size": vocab_size,
              "name": name, "overwrite": overwrite, "minutes": minutes, "probe": probe}

    def refresh(signature: tuple, message: str | None = None) -> dict:
        """Redraw from the logs; figures only when something new was logged."""
        view = job_view(board, signature)
        if view is None:
            return {status: message or "No training job yet.", timer: gr.Timer(active=False)}
        ended = bool(signature) and signature[1] == RUNNING and not view.running
        updates = {status: f"{message}\n\n{view.status}" if message else view.status, progress: view.progress,
                   log: view.log, seen: view.signature, timer: gr.Timer(active=view.running),
                   curves: gr.skip() if view.curves is None else view.curves,
                   animation: gr.skip() if view.animation is None else view.animation}
        if ended or not signature:
            names = catalog.names()
            updates.update({picker: gr.Dropdown(choices=names) for picker in pickers})
        return updates

    def on_start(values: dict) -> dict:
        return refresh((), start_job(board, {key: values[component] for key, component in fields.items()}, gate))

    def on_stop(signature: tuple) -> dict:
        job = board.latest()
        try:
            if job is None:
                raise ValueError("no job to stop")
            job.stop()
        except (OSError, ValueError) as error:
            return refresh(signature, f"**Cannot stop:** {error}")
        return refresh(signature, "Stopping: the job saves its state at the next step and keeps its best model.")

    def on_resume(signature: tuple, budget: float) -> dict:
        job = board.latest()
        try:
            if job is None:
                raise ValueError("no job to resume")
            board.resume(job.name, float(budget))
        except ValueError as error:
            return refresh(signature, f"**Cannot resume:** {error}")
        return refresh((), f"**Job `{job.name}` resumed** for {float(budget):g} more minutes.")

    def on_data_change(choice: str):
        return (gr.Dropdown(visible=choice == TOY), gr.File(visible=choice == UPLOAD),
                gr.File(visible=choice == UPLOAD))

    outputs = [status, progress, curves, animation, log, seen, timer, *pickers]
    start.click(on_start, set(fields.values()), outputs, api_visibility="undocumented")
    stop.click(on_stop, seen, outputs, api_visibility="undocumented")
    resume.click(on_resume, [seen, minutes], outputs, api_visibility="undocumented")
    timer.tick(refresh, seen, outputs, api_visibility="undocumented")
    data.change(on_data_change, data, [task, uploads, dev_upload], api_visibility="undocumented")
    return {"board": board, "fields": fields, "outputs": outputs, "refresh": refresh, "start": on_start,
            "stop": on_stop, "resume": on_resume, "load": lambda: refresh(())}
