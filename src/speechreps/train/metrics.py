"""Per-epoch metrics of a training run: ``CKPT_DIR/metrics.jsonl`` (rewritten whole, atomically, each
epoch) and TensorBoard scalars when TensorBoard is installed.

A resumed run keeps the rows up to the epoch it resumes from and drops later ones (those of the
interrupted run), so the file always describes the checkpoints on disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fileio import write_text


class MetricsLog:
    """``metrics.jsonl`` (rewritten atomically each epoch) and TensorBoard scalars."""

    def __init__(self, ckpt_dir: Path, start_epoch: int, tensorboard: bool = True):
        self.path = ckpt_dir / "metrics.jsonl"
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file() and start_epoch > 0:
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if int(row.get("epoch", 0)) <= start_epoch:
                    self.rows.append(row)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(ckpt_dir / "tensorboard"), purge_step=start_epoch + 1)
            except Exception as exc:  # tensorboard missing or broken: metrics.jsonl still has everything
                import warnings

                warnings.warn(f"TensorBoard logging disabled: {exc}")

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows))
        if self.writer is not None:
            epoch = row["epoch"]
            for name, value in row.items():
                if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    group = "val" if name.startswith("val_") else ("speed" if name in ("seconds", "frames_per_s") else "train")
                    self.writer.add_scalar(f"{group}/{name}", value, epoch)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class NoMetrics:
    """What ranks other than 0 log: nothing."""

    def add(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass
