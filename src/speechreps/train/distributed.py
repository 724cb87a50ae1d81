"""Distributed data-parallel (DDP) training through ``torchrun``: process group, sharded batches, rank 0 I/O.

``torchrun --nproc-per-node N -m speechreps train TYPE CONFIG CKPT_DIR ...`` starts N copies of the
ordinary command; torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``. :func:`init_from_env` (called by the trainer and the pipeline) then joins the process
group: NCCL when the training device is CUDA (each process on ``cuda:LOCAL_RANK``), gloo on CPU.
Without those variables (or with ``WORLD_SIZE=1``) nothing changes: one process, no process group.

How batches are shared (:class:`ShardedBatchSampler`). Every rank builds the *same* sampler with the
same seed, so every rank draws the same list of batches for an epoch (length buckets for APC/CAPC,
speakers x utterances for CPC, frame batches for the frame models, segment-pair buckets for the
CAE-RNN). Rank ``r`` trains on batches ``r, r + W, r + 2W, ...`` of that list (``W`` = world size), so:

- a rank always gets *whole* batches: CPC's speaker groups (and its same-speaker negatives) stay intact;
- ``batch_size`` (and CPC's ``n_speakers_per_batch x n_utterances_per_speaker``) is the batch *per
  rank*; one optimisation step consumes ``W`` consecutive batches of the list, the *global batch*
  (``W x batch_size`` items). DDP averages the ranks' gradients, so a step equals one step of a
  single process on the union of the ``W`` batches whenever the loss is a mean over equally sized
  batches (exactly so for the frame models: a 1-process run with ``batch_size = W x b`` draws the
  same frame permutation and cuts it into the same global batches; see ``tests/test_distributed.py``);
- an epoch has ``len(list) // W`` steps: the last ``len(list) % W`` batches of the (shuffled) list are
  left out that epoch so every rank takes the same number of steps (DDP needs matching collectives);
- the sampler's generator advances identically on every rank, so rank 0's checkpoint holds the
  sampler state of all ranks; resume is exact. The global torch/NumPy/Python RNG states can differ
  per rank (dropout, CPC negatives); the checkpoint stores every rank's (``rng_per_rank``) and a
  resumed run with the same world size restores each rank's own.

Only rank 0 writes checkpoints, ``metrics.jsonl``, TensorBoard and logs, and shows progress bars;
validation runs on rank 0 while the other ranks wait at a barrier.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..errors import UserError


def env_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise UserError(f"environment WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def device_for_rank(device: torch.device) -> torch.device:
    """Under DDP a bare ``cuda`` means this process's GPU, ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None and env_world_size() > 1:
        return torch.device("cuda", local_rank() % max(1, torch.cuda.device_count()))
    return device


def init_from_env(device: torch.device | str | None = None) -> bool:
    """Join the process group torchrun describes (idempotent); True when training is distributed.

    Backend: ``SPEECHREPS_DIST_BACKEND`` if set, else NCCL for a CUDA device, gloo otherwise.
    """
    if env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise UserError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if dist.is_initialized():
        return dist.get_world_size() > 1
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise UserError(f"WORLD_SIZE is set but {name} is not: start distributed training with torchrun")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = device_for_rank(dev)
    backend = os.environ.get("SPEECHREPS_DIST_BACKEND") or ("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    timeout = timedelta(seconds=float(os.environ.get("SPEECHREPS_DIST_TIMEOUT", 3600)))
    dist.init_process_group(backend=backend, timeout=timeout)
    return dist.get_world_size() > 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device | None = None) -> list[float]:
    """Sums of ``values`` over all ranks (identity in one process)."""
    if not is_distributed():
        return list(values)
    dev = device if device is not None and dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class ShardedBatchSampler:
    """Rank ``rank``'s share of a batch sampler: every ``world``-th batch of the epoch's list.

    Wraps any sampler of :mod:`speechreps.data.samplers` (all ranks must build it with the same
    seed); ``state_dict`` / ``load_state_dict`` are the wrapped sampler's, identical on every rank.
    """

    def __init__(self, sampler: Any, rank: int, world: int):
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"bad rank {rank} of world size {world}")
        self.sampler, self.rank, self.world = sampler, int(rank), int(world)
        if len(sampler) < self.world:
            raise UserError(f"an epoch has {len(sampler)} batches, fewer than the {self.world} processes: "
                            "use fewer processes or a smaller batch_size")

    def __len__(self) -> int:
        return len(self.sampler) // self.world

    def __iter__(self) -> Iterator[Any]:
        batches = list(self.sampler)  # the same list on every rank (same seed, same generator state)
        usable = (len(batches) // self.world) * self.world
        return iter(batches[self.rank:usable:self.world])

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)

    def __getattr__(self, name: str) -> Any:  # batch_size, lengths, ... of the wrapped sampler
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


class LossModule(torch.nn.Module):
    """``forward(batch) = model.loss(batch)``: what DDP wraps, so its gradient hooks see the loss."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Any):
        return self.model.loss(batch)


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A DDP module whose ``forward(batch)`` returns ``model.loss(batch)``; parameters broadcast from rank 0.

    ``find_unused_parameters=True``: some models leave parameters out of some losses (APC's auxiliary
    network when its loss is off for a batch, CAE-RNN phases).
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(LossModule(model), device_ids=ids, find_unused_parameters=True)
