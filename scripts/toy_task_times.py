"""How long each toy task takes with the Train tab's defaults: wall clock from starting the job (what
the tab's Start button calls) to the first validation with at least 95% of the dev outputs exactly
right; then the job is stopped.

    python -m scripts.toy_task_times --checkpoints /tmp/task-times [--budget 120]

Runs the four tasks one after another (two trainings side by side would share the 2 cores) and
prints a Markdown table row per task: the time, the step, the best dev exact match and the
alignment accuracy at that validation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from s2s.jobs import JobBoard
from s2s.toy import TASKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, required=True, help="a scratch checkpoints folder")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of training at most, per task")
    args = parser.parse_args()
    board = JobBoard(args.checkpoints)
    print("| task | start → 95% exact match | at step | best dev exact match % | its alignment accuracy |")
    print("| --- | --- | --- | --- | --- |")
    for task in TASKS:
        started = time.monotonic()
        job = board.start(task, task=task, train={"max_time": args.budget}, overwrite=True)
        learned = None
        while job.running():
            time.sleep(0.5)
            if learned is None and any(r["exact"] >= 95 for r in job.validations()):
                learned = time.monotonic() - started
                job.stop()
        best = max(job.validations(), key=lambda r: (r["exact"], -r["step"]))
        print(f"| `{task}` | {'—' if learned is None else f'{learned:.0f} s'} | {best['step']} | "
              f"{best['exact']:.1f} | {best.get('alignment_accuracy')} |")


if __name__ == "__main__":
    main()
