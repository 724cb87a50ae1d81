"""Training budgets in optimizer steps, which mean the same on any corpus.

Why: an epoch is one pass over the training data, so a budget in epochs shrinks with the corpus. On
a 120-utterance corpus CPC's speaker batches make one batch per epoch, and 15 epochs were 15
gradient steps. A config may therefore give ``num_steps`` (and ``steps_per_epoch``) instead: the
trainer then runs ``num_steps / steps_per_epoch`` "epochs" of exactly ``steps_per_epoch`` steps each,
drawn from the sampler's real epochs one after another (a block may end inside a real epoch and the
next block continue it). Everything counted in epochs (``validate_every``, ``checkpoint_interval``,
``lr_milestones``, ``epoch_<N>.pt``, metrics rows) counts these blocks; block ``N`` ends at step
``N * steps_per_epoch``.

Under ``torchrun`` the blocks are of the whole job's batches: each of ``W`` processes takes every
``W``-th batch of a block (:class:`~speechreps.train.distributed.ShardedBatchSampler`), so that
``num_steps`` batches are trained on in all, as in one process.

Resume stays exact: the state of :class:`StepBlockSampler` is the inner sampler's generator state at
the start of the real epoch in progress plus how many of that epoch's batches were used; loading it
draws that epoch again from the same state and skips the used batches.
"""

from __future__ import annotations

from typing import Any

from ..config import TrainingConfig


class StepBlockSampler:
    """Yields blocks of exactly ``block`` batches from the consecutive epochs of ``inner``."""

    def __init__(self, inner: Any, block: int):
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.inner = inner
        self.block = int(block)
        self._epoch_start: dict[str, Any] | None = None  # inner state before the current real epoch was drawn
        self._pending: list = []
        self._offset = 0

    def __len__(self) -> int:
        return self.block

    def _next_epoch(self) -> None:
        self._epoch_start = self.inner.state_dict()
        self._pending = list(iter(self.inner))
        self._offset = 0

    def __iter__(self):
        out = []
        while len(out) < self.block:
            if self._offset >= len(self._pending):
                self._next_epoch()
                if not self._pending:
                    raise RuntimeError("the training sampler drew an empty epoch")
            take = min(self.block - len(out), len(self._pending) - self._offset)
            out.extend(self._pending[self._offset : self._offset + take])
            self._offset += take
        return iter(out)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_start": self._epoch_start, "offset": self._offset, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "offset" not in state:  # a checkpoint of an epoch-budget run: the inner sampler's own state
            raise ValueError("checkpoint was written by a run with an epoch budget, not num_steps")
        self._pending, self._offset, self._epoch_start = [], 0, None
        if state["epoch_start"] is not None:
            self.inner.load_state_dict(state["epoch_start"])
            self._next_epoch()
            self._offset = int(state["offset"])
        self.inner.load_state_dict(state["inner"])


def apply_step_budget(train_set: Any, cfg: TrainingConfig) -> int | None:
    """Wrap ``train_set.sampler`` for a ``num_steps`` budget; returns the number of blocks (None: epochs)."""
    num_steps = cfg.num_steps
    if num_steps <= 0:
        return None
    block = cfg.steps_per_epoch or num_steps
    if not isinstance(train_set.sampler, StepBlockSampler):
        train_set.sampler = StepBlockSampler(train_set.sampler, block)
    return num_steps // block
