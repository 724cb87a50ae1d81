"""The report's figures (PNG, matplotlib's Agg backend): training loss, validation AP against epoch
and minutes, precision-recall curves, and a t-SNE map of word tokens. Each takes numbers computed
elsewhere in the run and only draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, axes, path: Path) -> Path:
    """Grid on each panel, the legend on the last, then write the PNG and free the figure."""
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_training_curves(curves: dict[str, list[tuple[int, float]]], path: Path) -> Path | None:
    """Loss per epoch, one line per model (each normalised by its first epoch's loss, since the
    models' losses have different units)."""
    if not curves:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, pts in sorted(curves.items()):
        if not pts:
            continue
        ep, loss = zip(*pts)
        axes[0].plot(ep, loss, marker=".", label=label)
        axes[1].plot(ep, np.asarray(loss) / (loss[0] or 1.0), marker=".", label=label)
    axes[0].set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    axes[1].set(xlabel="epoch", ylabel="loss / first-epoch loss", title="relative training loss")
    return _save(fig, axes, path)


def plot_pr_curves(curves: dict[str, tuple[list[float], list[float]]], path: Path, title: str) -> Path | None:
    """Precision against recall, one line per feature type."""
    if not curves:
        return None
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for label, (precision, recall) in curves.items():
        ax.plot(recall, precision, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_token_maps(maps: dict[str, tuple[np.ndarray, list[str]]], path: Path, seed: int = 0) -> Path | None:
    """t-SNE of fixed-size (downsampled) token vectors, one panel per feature type, coloured by word."""
    if not maps:
        return None
    plt = _pyplot()
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(maps), figsize=(5.2 * len(maps), 4.6), squeeze=False)
    for ax, (name, (vectors, labels)) in zip(axes[0], maps.items()):
        perplexity = max(2.0, min(30.0, (len(vectors) - 1) / 3))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(vectors)
        words = sorted(set(labels))
        cmap = plt.get_cmap("tab10" if len(words) <= 10 else "tab20")
        for i, w in enumerate(words):
            sel = np.array([lab == w for lab in labels])
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, color=cmap(i % cmap.N), label=w)
        ax.set(title=name, xticks=[], yticks=[])
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_validation_curves(curves: dict[str, list[dict]], path: Path) -> Path | None:
    """Validation AP (``val_ap``: DTW on the fixed validation subset) against epoch and against
    minutes of training (validation included), one line per model."""
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, pts in sorted(curves.items()):
        axes[0].plot([p["epoch"] for p in pts], [p["val_ap"] for p in pts], marker=".", label=label)
        axes[1].plot([p["minutes"] for p in pts], [p["val_ap"] for p in pts], marker=".", label=label)
    axes[0].set(xlabel="epoch", ylabel="validation AP", title="validation AP against epoch")
    axes[1].set(xlabel="minutes of training", ylabel="validation AP", title="validation AP against time")
    return _save(fig, axes, path)
