"""Discovery from archive to folder, with optional scoring: what the command and the main job call."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.alignments import WordAlignment, read_wrd
from ..data.archive import parse_utterance_key
from ..fileio import write_json
from .config import DiscoverConfig
from .core import Discovery, discover
from .outputs import HOP_SECONDS, clusters_in_seconds, write_outputs
from .tde import evaluate_terms, pair_ned


def gold_for(path: str | Path, utterances: Mapping[str, np.ndarray]) -> list[WordAlignment]:
    """The alignment entries of the utterances in the archive (a corpus-wide file is fine)."""
    utts = {parse_utterance_key(k).utt for k in utterances}
    return [w for w in read_wrd(path) if w.utt in utts]


def score(discovery: Discovery, words: list[WordAlignment], phones: list[WordAlignment] | None = None,
          max_pairs_per_cluster: int | None = None) -> dict:
    """ZeroSpeech measures of the clusters, plus the mean NED of the pair file itself (``ned_pairs``)."""
    result = evaluate_terms(clusters_in_seconds(discovery), words, phones)
    pairs = [((p.utt1, p.start1 * HOP_SECONDS, p.end1 * HOP_SECONDS), (p.utt2, p.start2 * HOP_SECONDS, p.end2 * HOP_SECONDS))
             for p in discovery.term_pairs(max_pairs_per_cluster)]
    result["ned_pairs"] = pair_ned(pairs, words, phones)
    result["n_pairs"] = len(pairs)
    return result


def discover_to_folder(utterances: Mapping[str, np.ndarray], out: str | Path, cfg: DiscoverConfig | None = None,
                       gold: str | Path | None = None, phones: str | Path | None = None,
                       log: Callable[[str], None] = print) -> dict:
    """Discover, write the outputs (:mod:`.outputs`) and ``discover.json``; return that summary."""
    cfg = cfg or DiscoverConfig()
    found = discover(utterances, cfg, log=log)
    paths = write_outputs(found, utterances, out, cfg.max_pairs_per_cluster)
    summary: dict = {"config": cfg.to_dict(), "stats": found.stats, "files": {k: str(v) for k, v in paths.items()}}
    if gold is not None:
        words = gold_for(gold, utterances)
        phone_list = gold_for(phones, utterances) if phones is not None else None
        summary["scores"] = score(found, words, phone_list, cfg.max_pairs_per_cluster)
        summary["scores"]["phones"] = "gold phones" if phones is not None else "letters of the gold words"
        s = summary["scores"]
        log(f"discover: NED {s['ned']:.3f} (pairs {s['ned_pairs']:.3f}), coverage {s['coverage']:.3f}, "
            f"grouping F {s['grouping']['f']:.3f}, token F {s['token']['f']:.3f}, boundary F {s['boundary']['f']:.3f}")
    write_json(Path(out) / "discover.json", summary)
    log(f"discover: wrote {', '.join(str(p) for p in paths.values())}")
    return summary
