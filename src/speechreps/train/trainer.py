"""One training loop for every representation model.

The loop (per epoch): the sampler's batches -> ``model.loss(batch)`` -> backward -> gradient clipping
-> Adam step; then ``MultiStepLR`` steps (milestones in epochs), validation every ``validate_every``
epochs (and at the last epoch), checkpoints every ``checkpoint_interval`` epochs and at the end
(see :mod:`speechreps.train.checkpoint`), one row of metrics to TensorBoard
(``CKPT_DIR/tensorboard``) and to ``CKPT_DIR/metrics.jsonl``.

Reproducibility: :func:`seed_everything` seeds torch, NumPy and Python before the model is built;
the sampler owns its own NumPy generator. A checkpoint stores the model, optimizer, scheduler,
AMP scaler, sampler and all RNG states as they are at the end of its epoch, so that training
resumed from ``epoch_<N>.pt`` equals the uninterrupted run bit-for-bit on CPU (same threads).

Distributed data-parallel (``torchrun``): when launched with ``WORLD_SIZE > 1`` the trainer joins the
process group, wraps the model in DDP and the sampler in a
:class:`~speechreps.train.distributed.ShardedBatchSampler` (each rank trains on whole batches of the
shared batch list); only rank 0 writes checkpoints, metrics and logs, and validates while the others wait
(see :mod:`speechreps.train.distributed`). ``workers > 0``: batches are collated in that many data-loader
processes (the epoch's batch list is drawn first, in this process, so sampler state stays exact).

Validation AP decides ``best.pt``: the trainer calls ``validate(model)`` (in eval mode, without
gradients), which returns a dict with at least ``val_ap``; see :func:`speechreps.evaluate.scoring.make_validator`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainingConfig
from ..crash import kill_point
from ..errors import UserError
from ..fileio import write_json
from ..progress import Heartbeat, bars_enabled
from ..threads import training_threads
from . import checkpoint as ckpt
from . import distributed as dist_
from .budget import apply_step_budget
from .metrics import MetricsLog, NoMetrics
from .precision import autocast_plan


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's global generator and Python's ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device(requested: str | None = None) -> torch.device:
    """``requested`` if given (``cpu``, ``cuda``, ``cuda:1``), else CUDA when available, else CPU."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise UserError(f"--device {requested!r} is not a torch device (cpu, cuda, cuda:N)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {requested}: CUDA is not available on this machine")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class TrainResult:
    """What a :meth:`Trainer.fit` call did."""

    ckpt_dir: Path
    start_epoch: int
    last_epoch: int
    best_ap: float | None
    best_epoch: int | None
    seconds: float
    frames: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Collated(torch.utils.data.Dataset):
    """Batch ``i`` of an epoch's drawn batch list, collated (what data-loader workers run)."""

    def __init__(self, batches: list, train_set: Any):
        self.batches, self.train_set = batches, train_set

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        return self.train_set.collate(self.batches[i])


def make_optimizer(parameters, learning_rate: float) -> torch.optim.Adam:
    """Adam, fused into one kernel for all parameters where torch can (float32 on CPU or CUDA).

    Why: the default loops over the parameters; on 2 CPU threads the fused update made a paper-size
    frame CAE step (many small layers) 1.6x faster. The update rule is the same.
    """
    params = list(parameters)
    fused = bool(params) and all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=learning_rate, fused=fused)


class Trainer:
    """Trains ``model`` on ``train_set`` with the training fields of ``cfg``; writes to ``ckpt_dir``.

    ``cfg`` is a :class:`~speechreps.config.TrainingConfig` (any subclass: the frame models' and the
    AWE models'), validated at load; fields used: learning_rate, lr_milestones, lr_gamma, num_epochs (or num_steps and
    steps_per_epoch, see :mod:`speechreps.train.budget`), checkpoint_interval,
    grad_clip (<= 0 or None: no clipping), amp (CUDA; CPU with native bfloat16: :mod:`.precision`), amp_dtype
    (``float16`` with a gradient scaler, or ``bfloat16`` without one; a CPU always uses bfloat16),
    validate_every (0: never), seed.
    ``train_set`` offers ``sampler`` (checkpointable), ``collate(refs)`` and ``n_frames(refs)``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_set: Any,
        cfg: TrainingConfig,
        ckpt_dir: str | Path,
        representation_type: str,
        device: torch.device | str | None = None,
        validate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
        tensorboard: bool = True,
        workers: int = 0,
        log_every: float = 30.0,
    ):
        self.device = torch.device(device) if device is not None else default_device()
        self.distributed = dist_.init_from_env(self.device)
        self.device = dist_.device_for_rank(self.device)
        self.rank, self.world = dist_.rank(), dist_.world_size()
        self.main = self.rank == 0
        self.model = model.to(self.device)
        self.ddp = dist_.wrap_model(self.model, self.device) if self.distributed else None
        blocks = apply_step_budget(train_set, cfg)  # num_steps: "epochs" of steps_per_epoch steps (budget.py)
        if self.distributed and not isinstance(train_set.sampler, dist_.ShardedBatchSampler):
            train_set.sampler = dist_.ShardedBatchSampler(train_set.sampler, self.rank, self.world)
        self.workers = max(0, int(workers or 0))
        self.train_set = train_set
        if hasattr(train_set.dataset, "to"):
            train_set.dataset.to(self.device)
        self.cfg = cfg
        self.ckpt_dir = Path(ckpt_dir)
        self.rep_type = representation_type
        self.validate = validate
        self.progress = progress and self.main
        self.log = log if self.main else (lambda msg: None)
        self.tensorboard = tensorboard
        self.log_every = float(log_every)  # seconds between progress lines when no bar is drawn
        self.num_epochs = blocks if blocks is not None else cfg.num_epochs
        self.interval = max(1, cfg.checkpoint_interval)
        self.validate_every = cfg.validate_every
        self.grad_clip = float(cfg.grad_clip or 0.0)
        self.optimizer = make_optimizer(model.parameters(), cfg.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma
        )
        if cfg.amp_dtype not in ("float16", "bfloat16"):
            raise UserError(f"config amp_dtype: {cfg.amp_dtype!r} is not float16 or bfloat16")
        plan = autocast_plan(cfg.amp, cfg.amp_dtype, self.device)  # CUDA, or CPU with native bf16
        if plan.note:
            self.log(plan.note)
        self.amp, self.amp_dtype = plan.enabled, plan.dtype
        # fp16 needs loss scaling; bf16 has float32's range and does not
        self.scaler = torch.amp.GradScaler("cuda", enabled=plan.scale)
        self.best_ap: float | None = None
        self.best_epoch: int | None = None
        self.epoch = 0

    # -- state ----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.train_set.sampler.state_dict(),
            "rng": ckpt.rng_state(),
            "world_size": self.world,
            "epoch": self.epoch,
            "config": dataclasses.asdict(self.cfg),
            "representation_type": self.rep_type,
            "best": {"val_ap": self.best_ap, "epoch": self.best_epoch},
            "versions": ckpt.versions(),
        }

    def load(self, path: str | Path) -> None:
        """Restore everything from a checkpoint written by this trainer."""
        state = ckpt.load(path, map_location=self.device)
        if state.get("representation_type") not in (None, self.rep_type):
            raise UserError(f"checkpoint {path} holds a {state['representation_type']!r} model, not {self.rep_type!r}")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"checkpoint {path} does not fit the model of this config: {first}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.train_set.sampler.load_state_dict(state["sampler"])
        per_rank = state.get("rng_per_rank")
        if per_rank is not None and len(per_rank) == self.world:
            ckpt.set_rng_state(per_rank[self.rank])
        else:
            ckpt.set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self._apply_schedule(state.get("config") or {}, path)
        best = state.get("best") or {}
        self.best_ap, self.best_epoch = best.get("val_ap"), best.get("epoch")

    def _apply_schedule(self, saved: dict[str, Any], path: str | Path) -> None:
        """A resumed run follows the config's learning-rate schedule, not the checkpoint's; say so if they differ.

        The optimizer and scheduler states carry the old rate and milestones; without this a changed
        ``learning_rate`` would be recorded in config.json but silently not used.
        """
        names = ("learning_rate", "lr_milestones", "lr_gamma")
        new = {"learning_rate": float(self.cfg.learning_rate),
               "lr_milestones": sorted(int(m) for m in self.cfg.lr_milestones),
               "lr_gamma": float(self.cfg.lr_gamma)}
        old = {n: saved.get(n) for n in names}
        if old["lr_milestones"] is not None:
            old["lr_milestones"] = sorted(int(m) for m in old["lr_milestones"])
        changed = [n for n in names if old[n] is not None and old[n] != new[n]]
        if not changed:
            return
        from collections import Counter

        sched = self.scheduler
        sched.milestones, sched.gamma = Counter(new["lr_milestones"]), new["lr_gamma"]
        sched.base_lrs = [new["learning_rate"]] * len(self.optimizer.param_groups)
        lr = new["learning_rate"] * new["lr_gamma"] ** sum(1 for m in new["lr_milestones"] if m <= sched.last_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        sched._last_lr = [lr] * len(self.optimizer.param_groups)
        what = ", ".join(f"{n} {old[n]} -> {new[n]}" for n in changed)
        self.log(f"resuming from {path} with a changed schedule ({what}): learning rate {lr:g} from epoch "
                 f"{self.epoch + 1}")

    # -- loop -----------------------------------------------------------------------------------

    def _autocast(self):
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def train_epoch(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        self.model.train()
        sampler = self.train_set.sampler
        total, n_batches, frames = torch.zeros((), dtype=torch.float64, device=self.device), 0, 0
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = tqdm(total=len(sampler), desc=f"{self.rep_type} epoch {self.epoch + 1}/{self.num_epochs}",
                   disable=None if self.progress else True, leave=False, dynamic_ncols=True)
        # no bar (not a terminal, or --no-progress): a line with the rate and time left now and then
        beat = Heartbeat(f"{self.rep_type} epoch {self.epoch + 1}/{self.num_epochs}", len(sampler), self.log,
                         every=0.0 if bars_enabled(self.progress) else self.log_every)
        for refs, batch in self._batches(sampler):
            batch = batch.to(self.device)
            n_frames = self.train_set.n_frames(refs)
            frames += n_frames
            with self._autocast():
                loss, metrics = self.ddp(batch) if self.ddp is not None else self.model.loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total = total + loss.detach().double()  # stays on the device: no sync per batch
            n_batches += 1
            for name, v in (metrics or {}).items():
                sums[name] = sums.get(name, 0.0) + float(v)
            bar.update(1)
            beat.update(1, n_frames)
            if n_batches % 10 == 0 or n_batches == len(sampler):
                total_loss = float(total)
                if not math.isfinite(total_loss):
                    raise RuntimeError(f"{self.rep_type}: loss became {total_loss} in epoch {self.epoch + 1}; "
                                       "lower the learning rate or set grad_clip")
                bar.set_postfix(loss=f"{total_loss / n_batches:.4f}")
        bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        total_loss = float(total)
        if self.distributed:  # the epoch's figures over all ranks (every rank took n_batches steps)
            names = sorted(sums)
            reduced = dist_.all_reduce_sum([total_loss, n_batches, frames] + [sums[n] for n in names], self.device)
            total_loss, n_batches, frames = reduced[0], int(reduced[1]), int(reduced[2])
            sums = dict(zip(names, reduced[3:]))
        row: dict[str, Any] = {"epoch": self.epoch + 1, "loss": total_loss / max(n_batches, 1)}
        row.update({name: v / max(n_batches, 1) for name, v in sums.items() if name != "loss"})
        row.update({"lr": self.optimizer.param_groups[0]["lr"], "seconds": round(seconds, 3), "frames": frames,
                    "frames_per_s": round(frames / seconds, 1) if seconds > 0 else 0.0})
        return row

    def _batches(self, sampler):
        """``(refs, collated batch)`` pairs of one epoch, collated here or in ``workers`` processes."""
        on_device = getattr(getattr(self.train_set.dataset, "x", None), "device", torch.device("cpu")).type != "cpu"
        if self.workers <= 0 or on_device:
            for refs in sampler:
                yield refs, self.train_set.collate(refs)
            return
        batches = list(sampler)  # drawn here: the sampler's generator advances exactly as without workers
        loader = torch.utils.data.DataLoader(_Collated(batches, self.train_set), batch_size=None, shuffle=False,
                                             num_workers=self.workers, pin_memory=self.device.type == "cuda")
        yield from zip(batches, loader)

    def run_validation(self) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return dict(self.validate(self.model))
        finally:
            self.model.train(was_training)

    def fit(self, load_from_epoch: int | None = None) -> TrainResult:
        """Train up to ``num_epochs`` epochs, from scratch or resumed from ``epoch_<load_from_epoch>.pt``.

        Rank 0 holds the checkpoint folder's lock throughout: a second run into it fails at once.
        """
        with ckpt.folder_lock(self.ckpt_dir) if self.main else contextlib.nullcontext(), \
                training_threads(self.model, self.device):  # 1 thread for the frame MLPs (threads.py)
            return self._fit(load_from_epoch)

    def _fit(self, load_from_epoch: int | None) -> TrainResult:
        if self.main:
            ckpt.repair_folder(self.ckpt_dir, self.log)
        if load_from_epoch is not None:
            path = ckpt.find_checkpoint(self.ckpt_dir, epoch=load_from_epoch)
            self.load(path)
            self.log(f"resumed from {path} (epoch {self.epoch})")
        start = self.epoch
        if self.main:
            write_json(self.ckpt_dir / "config.json", {self.rep_type: dataclasses.asdict(self.cfg)})
            metrics = MetricsLog(self.ckpt_dir, start, self.tensorboard)
        else:
            metrics = NoMetrics()
        history, total_frames, total_seconds = [], 0, 0.0
        try:
            while self.epoch < self.num_epochs:
                row = self.train_epoch()
                self.epoch += 1
                self.scheduler.step()
                total_frames += row["frames"]
                total_seconds += row["seconds"]
                improved = False
                if self.main and self.validate is not None and self.validate_every > 0 and (
                    self.epoch % self.validate_every == 0 or self.epoch == self.num_epochs
                ):
                    t0 = time.perf_counter()
                    val = self.run_validation()
                    row.update(val)
                    row["val_seconds"] = round(time.perf_counter() - t0, 3)
                    ap = val.get("val_ap")
                    if ap is not None and (self.best_ap is None or ap > self.best_ap):
                        self.best_ap, self.best_epoch, improved = float(ap), self.epoch, True
                metrics.add(row)  # before the checkpoint: a row without one is dropped on resume
                kill_point("train-after-metrics")
                self._save(improved)
                history.append(row)
                msg = f"epoch {self.epoch}/{self.num_epochs}: loss {row['loss']:.4f}, {row['frames_per_s']:.0f} frames/s"
                if "val_ap" in row:
                    msg += f", val AP {row['val_ap']:.4f}" + (" (best)" if improved else "")
                self.log(msg)
        finally:
            metrics.close()
        dist_.barrier()  # the other ranks may read rank 0's checkpoints next
        return TrainResult(self.ckpt_dir, start, self.epoch, self.best_ap, self.best_epoch,
                           total_seconds, total_frames, history)

    def _save(self, improved: bool) -> None:
        due = self.epoch % self.interval == 0 or self.epoch == self.num_epochs
        if self.distributed:  # every rank joins the gather; rank 0 writes; all wait for the file
            due = bool(dist_.all_reduce_sum([float(due or improved)], self.device)[0] > 0)
            rngs = dist_.gather_objects(ckpt.rng_state()) if due else None
            if self.main and due:
                self._write(improved, rngs)
            dist_.barrier()
            return
        self._write(improved, None)

    def _write(self, improved: bool, rngs: list | None) -> None:
        due = self.epoch % self.interval == 0 or self.epoch == self.num_epochs
        if not due and not improved:
            return
        state = self.state()
        if rngs is not None:
            state["rng_per_rank"] = rngs
        if due:  # the order that ckpt.repair relies on: epoch file, best, last
            path = ckpt.save(state, ckpt.epoch_path(self.ckpt_dir, self.epoch))
            kill_point("train-after-epoch-file")
            if improved:
                ckpt.link_or_copy(path, self.ckpt_dir / "best.pt")
                kill_point("train-after-best")
            ckpt.link_or_copy(path, self.ckpt_dir / "last.pt")
        else:
            ckpt.save(state, self.ckpt_dir / "best.pt")
