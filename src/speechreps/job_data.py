"""The main job's datasets (stages 1-2 of :mod:`speechreps.experiment`): the built-in corpora, a user's
own audio corpora (``--corpus``) or a user's prepared datasets (``--dataset``).

Each returns ``(data_paths.json, dataset names, {name: fingerprint})``: the fingerprint stands for
everything that decides the dataset's content, so that later stages rerun exactly when it changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError
from .stages import StageCache, fingerprint

if TYPE_CHECKING:
    from .experiment import MainJobOptions


def builtin_datasets(opts: MainJobOptions, cache: StageCache) -> tuple[Path, list[str], dict[str, str]]:
    """Build and prepare the built-in corpora; returns (data_paths, dataset names, prepare fingerprints)."""
    from .corpus.synth import SYNTH_VERSION, build_corpus
    from .data.prepare import prepare_corpus

    data_paths = opts.data_dir / "data_paths.json"
    names, fps = [], {}
    for lang in opts.languages:
        corpus_dir = opts.data_dir / "corpora" / f"synth_{lang}"
        kw: dict[str, Any] = {"seed": opts.corpus_seed}
        if opts.corpus_minutes is not None:
            kw["minutes"] = opts.corpus_minutes
        if opts.corpus_speakers is not None:
            kw["n_speakers"] = opts.corpus_speakers
        fp_corpus = fingerprint("corpus", lang, kw, SYNTH_VERSION)
        cache.run(f"corpus:{lang}", fp_corpus, lambda: str(build_corpus(
            lang, corpus_dir, jobs=opts.jobs, progress=opts.progress, **kw)))
        name = f"synth_{lang}"
        summary = cache.run(f"prepare:{lang}", fingerprint("prepare", fp_corpus), lambda: prepare_corpus(
            corpus_dir, opts.data_dir, name, jobs=opts.jobs, progress=opts.progress))
        names.append(name)
        fps[name] = summary["fingerprint"]
    return data_paths, names, fps


def corpus_datasets(opts: MainJobOptions) -> tuple[Path, list[str], dict[str, str]]:
    """Prepare each ``--corpus`` folder into ``data_dir`` (prepare's own cache skips unchanged ones)."""
    import re

    from .data.prepare import PrepareOptions, prepare_corpus

    names, fps = [], {}
    for corpus in opts.corpora or []:
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(corpus).resolve().name) or "corpus"
        if name in names:
            raise UserError(f"--corpus {corpus}: a second corpus named {name!r}")
        summary = prepare_corpus(corpus, opts.data_dir, name, PrepareOptions(zero_resource=opts.zero_resource),
                                 jobs=opts.jobs, progress=opts.progress, log=opts.log)
        if not any(s.get("word_tokens") for s in summary["splits"].values()):
            raise UserError(f"--corpus {corpus}: no word tokens to evaluate on (the main job needs word alignments; "
                            f"train single models on it with speechreps train)")
        names.append(name)
        fps[name] = summary["fingerprint"]
    return opts.data_dir / "data_paths.json", names, fps


def user_datasets(opts: MainJobOptions) -> tuple[Path, list[str], dict[str, str]]:
    from .data.registry import load_dataset
    from .run_options import resolve_data_paths

    data_paths = resolve_data_paths(opts.data_paths)
    fps = {}
    for name in opts.datasets or []:
        fps[name] = fingerprint("user-dataset", load_dataset(data_paths, name).stamp())
    return data_paths, list(opts.datasets or []), fps
