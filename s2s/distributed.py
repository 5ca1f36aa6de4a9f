"""Training on several processes with PyTorch's own engine: ``torch.distributed`` and
``DistributedDataParallel``, launched by ``torchrun``.

    torchrun --nproc_per_node 2 -m s2s train ...          # one machine, two processes
    torchrun --nnodes 2 --nproc_per_node 2 --rdzv-backend c10d --rdzv-endpoint HOST:29400 -m s2s train ...

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each process; without them training
runs as one process, exactly as before. The backend is ``gloo`` on CPUs and ``nccl`` on CUDA
GPUs (one GPU per process, ``LOCAL_RANK``), picked from the training device. Every rank builds the
same global batches (the same seed and epoch give the same batches) and takes its share of each
batch's sentences, so ``--batch-tokens`` stays the global budget and a recipe means the same on
1 or N processes. Rank 0 alone validates, writes checkpoints, the log and the card; the others
follow its decisions. A process that fails ends the job: torchrun stops the others.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
from typing import Any, Sequence, TypeVar

import torch
import torch.distributed as dist

from .hardware import training_device

T = TypeVar("T")
# Long enough for rank 0's validation (the others wait for it in a collective), short enough
# that a job whose peer vanished without torchrun noticing does not wait forever.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in the job: ``rank`` of ``world_size`` (0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items`` (every world_size-th, starting at rank)."""
        return list(items[self.rank::self.world_size])

    def any_of(self, *flags: bool) -> list[bool]:
        """For each flag, whether it is true on any rank (one all-reduce for all of them)."""
        if not self.distributed:
            return list(flags)
        values = torch.tensor([int(flag) for flag in flags], device=self.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(value) for value in values.tolist()]

    def share(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (a picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's ``value``, as a list on rank 0 (None elsewhere)."""
        if not self.distributed:
            return [value]
        gathered = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def _launched_world_size() -> int:
    """The job's process count that torchrun set (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start(device_choice: str) -> Cluster:
    """Join the job torchrun started (its environment variables), or run alone without them,
    on the device ``device_choice`` names (``s2s.hardware``)."""
    world_size = _launched_world_size()
    device = training_device(device_choice, int(os.environ.get("LOCAL_RANK", "0")))
    if world_size == 1:
        return Cluster(device=device)
    if not dist.is_available():
        raise ValueError("this PyTorch build has no torch.distributed; train with one process")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return Cluster(rank=int(os.environ["RANK"]), world_size=world_size, device=device)


def stop(cluster: Cluster) -> None:
    if cluster.distributed and dist.is_initialized():
        dist.destroy_process_group()


def end_worker() -> None:
    """End a torchrun worker whose job is done, skipping the interpreter's teardown (no-op when
    alone). Workers whose every file was written and whose process group was destroyed still
    aborted now and then in that teardown ("terminate called without an active exception", no
    Python frame left on any thread; 3 of about 70 two-process jobs of the test suite), and torchrun
    then reports the finished job as failed. Only buffered output is left to flush."""
    if _launched_world_size() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
