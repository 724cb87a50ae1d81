"""Pretrained encoders as extra rows of the main job (``speechreps run --encoder PATH ...``).

Each encoder on each dataset is one resumable stage ``encoder:<name>:<dataset>`` (its fingerprint:
the model folder's files, sizes and times, and the dataset's), which runs :func:`.layers.run_encoder`
into ``RUN/encoders/<name>/<dataset>/``. The best layer's rows join the main table (``trained on``:
``pretrained``); the per-layer tables and plots make their own section of the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..stages import StageCache, fingerprint
from .model import encoder_name, read_model_folder


def check_encoders(paths: list[Path]) -> None:
    """Fail on a bad model folder (or two folders of one name) before any long stage runs."""
    from ..errors import UserError

    seen: dict[str, Path] = {}
    for p in paths:
        read_model_folder(p)
        name = encoder_name(p)
        if name in seen:
            raise UserError(f"--encoder {p} and {seen[name]} have the same name {name!r}: rename one folder")
        seen[name] = Path(p)


def _model_stamp(path: Path) -> list:
    return sorted((f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in Path(path).iterdir() if f.is_file())


def encoder_stages(opts: Any, data_paths: Path, names: list[str], data_fps: dict[str, str],
                   cache: StageCache) -> tuple[list[dict], str]:
    """Run (or reuse) every encoder x dataset stage; returns (best-layer rows, the report section)."""
    from .layers import EncoderOptions, run_encoder

    rows, parts = [], []
    for path in opts.encoders:
        name = encoder_name(path)
        for ds in names:
            out = opts.run_dir / "encoders" / name / ds
            eopts = EncoderOptions(model=Path(path), data_paths=data_paths, dataset=ds, out_dir=out,
                                   device=opts.device, jobs=opts.jobs, progress=opts.progress, log=opts.log)
            summary = cache.run(f"encoder:{name}:{ds}", fingerprint("encoder", _model_stamp(path), data_fps[ds]),
                                lambda: run_encoder(eopts))
            best = summary["best_layer"]
            rows += [r for r in summary["rows"] if r["layer"] == best]
            parts.append(section(summary, out.relative_to(opts.run_dir)))
    return rows, "\n\n".join(parts)


def section(summary: dict, rel: Path) -> str:
    """One encoder on one dataset: what it is, its per-layer table and plot, where its features are."""
    from .layers import layer_table

    audio_rate = summary["audio_seconds"] / max(summary["encode_seconds"], 1e-9)
    lines = [
        f"### {summary['encoder']} ({summary['family']}, {summary['n_layers'] - 1} blocks, {summary['dim']}-d) on "
        f"{summary['dataset']}",
        "",
        f"Words encoded {'isolated' if summary['isolated'] else 'in context'}; {summary['audio_seconds']:.0f} s of audio "
        f"in {summary['encode_seconds']:.0f} s ({audio_rate:.1f} s of audio per second); scoring "
        f"{summary['score_seconds']:.0f} s. Best layer by validation DTW AP: **{summary['best_layer']}**, extracted to "
        f"`{rel}/`.",
        "",
        layer_table(summary["rows"]),
        "",
        f"![{summary['encoder']} layers]({rel}/layers.png)",
    ]
    return "\n".join(lines)
