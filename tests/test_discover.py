"""Term discovery (speechreps discover), its ZeroSpeech measures, and the transcription-free path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechreps import cli
from speechreps.data.alignments import WordAlignment, read_term_pairs
from speechreps.data.archive import format_key, load_archive, parse_word_key, save_archive
from speechreps.discover.tde import evaluate_terms

# ---------------------------------------------------------------------------------------------
# The ZeroSpeech measures against the challenge's own toolbox

TDE_WORDS = [
    ("a1", 0.00, 0.40, "abc"), ("a1", 0.40, 0.70, "de"), ("a1", 0.80, 1.20, "abc"),
    ("b1", 0.10, 0.50, "abc"), ("b1", 0.50, 0.90, "fgh"), ("b1", 0.90, 1.20, "de"),
    ("c1", 0.00, 0.40, "fgh"), ("c1", 0.40, 0.80, "abd"), ("c1", 0.80, 1.40, "xyzw"),
]
TDE_CLUSTERS = {
    "1": [("a1", 0.00, 0.40), ("a1", 0.80, 1.20), ("b1", 0.10, 0.50)],
    "2": [("b1", 0.50, 0.90), ("c1", 0.00, 0.42)],
    "3": [("a1", 0.40, 0.70), ("b1", 0.95, 1.20)],
    "4": [("a1", 0.05, 0.62), ("c1", 0.43, 0.75), ("a1", 0.71, 0.79)],  # the last covers no phone
    "5": [("c1", 0.85, 1.10)],
}
# zerospeech-tde 2.0.3 (tde.measures: Ned, Coverage, Grouping, TokenType, Boundary) on this case, with
# the phone alignment being each word's letters spread evenly over it (letter_units):
TDE_REFERENCE = {"ned": 0.06666666666666667, "coverage": 0.9230769230769231,
                 "grouping": (0.7777777777777778, 0.9999999999999999), "token": (0.8, 0.8888888888888888),
                 "type": (0.6666666666666666, 0.8), "boundary": (0.9230769230769231, 0.9230769230769231)}


def test_tde_measures_equal_the_zerospeech_toolbox():
    r = evaluate_terms(TDE_CLUSTERS, [WordAlignment(*w) for w in TDE_WORDS])
    assert r["ned"] == pytest.approx(TDE_REFERENCE["ned"])
    assert r["coverage"] == pytest.approx(TDE_REFERENCE["coverage"])
    for name in ("grouping", "token", "type", "boundary"):
        p, rec = TDE_REFERENCE[name]
        assert (r[name]["precision"], r[name]["recall"]) == pytest.approx((p, rec)), name
        assert r[name]["f"] == pytest.approx(2 * p * rec / (p + rec))
    # by hand: the only imperfect pair is (abcd-part, abd): clusters 1-3 are exact, NED 1/3 on 5 pairs
    assert r["n_pairs_ned"] == 3 + 1 + 1 + 1 - 0  # 3 in cluster 1, 1 each in 2, 3, 4
    assert r["coverage"] == pytest.approx(24 / 26)  # c1's 'y' and 'z' (0.95-1.25 s) are never covered


# ---------------------------------------------------------------------------------------------
# DTW of listed pairs and overlap removal


def test_pair_dtw_equals_the_reference():
    from speechreps.discover.verify import pair_dtw
    from speechreps.evaluate.dtw import dtw_reference, l2_normalize

    rng = np.random.default_rng(0)
    segs = [rng.standard_normal((int(n), 7)) for n in rng.integers(3, 30, size=12)]
    units = np.concatenate([l2_normalize(s) for s in segs])
    rows = np.cumsum([0] + [len(s) for s in segs])[:-1]
    a, b = rng.integers(0, 12, size=40), rng.integers(0, 12, size=40)
    lens = np.array([len(s) for s in segs])
    got = pair_dtw(units, rows[a], lens[a], rows[b], lens[b])
    want = [dtw_reference(segs[i], segs[j]) for i, j in zip(a, b)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_non_overlapping_keeps_the_best_of_each_overlapping_group():
    from speechreps.discover.verify import non_overlapping

    group = np.array([0, 0, 0, 1, 0])
    s1, e1 = np.array([0, 5, 50, 0, 4]), np.array([40, 45, 90, 40, 44])
    s2, e2 = np.array([100, 104, 100, 100, 300]), np.array([140, 144, 140, 140, 340])
    score = np.array([0.3, 0.2, 0.5, 0.9, 0.1])
    keep = non_overlapping(group, s1, e1, s2, e2, score, 0.5)
    # 1 beats 0 (same spans shifted); 2 overlaps on side b only; 3 is another group; 4 differs on side b
    assert keep.tolist() == [False, True, True, True, True]


def _trim_reference(a: np.ndarray, b: np.ndarray, min_length: int) -> tuple[int, int, int, int]:
    """Plain Python: the DTW path of the frame-pair code (:func:`speechreps.data.pairs.dtw_path`), then
    every stretch of it tried."""
    from speechreps.data.pairs import dtw_path

    ix, iy, _ = dtw_path(a, b)
    path = list(zip(ix.tolist(), iy.tolist()))
    dist = 1.0 - a @ b.T
    stretches = []
    for s in range(len(path)):
        for e in range(s, len(path)):
            span_a, span_b = path[e][0] - path[s][0] + 1, path[e][1] - path[s][1] + 1
            if span_a >= min_length and span_b >= min_length:
                mean = sum(dist[p] for p in path[s:e + 1]) / (span_a + span_b)
                stretches.append((mean, s, e))
    if not stretches:
        return 0, len(a), 0, len(b)
    _, s, e = min(stretches)
    return path[s][0], path[e][0] + 1, path[s][1], path[e][1] + 1


def test_trim_pairs_equals_the_reference_and_finds_a_planted_match():
    from speechreps.discover.trim import trim_pairs
    from speechreps.evaluate.dtw import l2_normalize

    rng = np.random.default_rng(1)
    segs = [l2_normalize(rng.standard_normal((int(n), 5))).astype(np.float32) for n in rng.integers(6, 26, size=10)]
    units = np.concatenate(segs)
    rows = np.cumsum([0] + [len(x) for x in segs])[:-1]
    lens = np.array([len(x) for x in segs])
    a, b = rng.integers(0, 10, size=40), rng.integers(0, 10, size=40)
    a, b = a[a != b], b[a != b]  # a segment against itself: every stretch costs 0, a tie
    got = trim_pairs(units, rows[a], lens[a], rows[b], lens[b], 8)
    want = [_trim_reference(segs[i].astype(np.float64), segs[j].astype(np.float64), 8) for i, j in zip(a, b)]
    assert [tuple(g) for g in got.tolist()] == want
    # a 40-frame stretch shared by two 70-frame segments, different frames around it: a stretch of it, the
    # same frames of it on both sides (every part of it costs 0; the first of min_length frames wins the tie)
    word = l2_normalize(np.cumsum(rng.standard_normal((40, 13)), axis=0)).astype(np.float32)
    left = [l2_normalize(rng.standard_normal((n, 13))).astype(np.float32) for n in (10, 25)]
    right = [l2_normalize(rng.standard_normal((n, 13))).astype(np.float32) for n in (20, 5)]
    seg_a, seg_b = np.concatenate([left[0], word, right[0]]), np.concatenate([left[1], word, right[1]])
    cut = trim_pairs(np.concatenate([seg_a, seg_b]), np.array([0]), np.array([70]), np.array([70]), np.array([70]), 30)
    (start_a, end_a, start_b, end_b), = cut.tolist()
    assert 10 <= start_a and end_a <= 50 and 25 <= start_b and end_b <= 65 and end_a - start_a >= 30
    assert (start_a - 10, end_a - 10) == (start_b - 25, end_b - 25)
    # segments shorter than the minimum stay whole
    assert trim_pairs(units, rows[:2], lens[:2], rows[2:4], lens[2:4], 40).tolist() == \
        [[0, int(lens[0]), 0, int(lens[2])], [0, int(lens[1]), 0, int(lens[3])]]


def test_coverage_threshold_is_the_loosest_that_covers_at_most_the_target():
    from speechreps.discover.core import coverage_threshold

    rng = np.random.default_rng(2)
    n_frames, p = 600, 40
    row_a, row_b = rng.integers(0, 560, size=p), rng.integers(0, 560, size=p)
    len_a, len_b = rng.integers(5, 40, size=p), rng.integers(5, 40, size=p)
    len_a, len_b = np.minimum(len_a, n_frames - row_a), np.minimum(len_b, n_frames - row_b)
    cost = np.round(rng.uniform(0.1, 0.5, size=p), 2)  # ties on purpose

    def covered(threshold):
        frames = set()
        for k in np.nonzero(cost <= threshold)[0]:
            frames |= set(range(row_a[k], row_a[k] + len_a[k])) | set(range(row_b[k], row_b[k] + len_b[k]))
        return len(frames) / n_frames

    for target in (0.05, 0.2, 0.35, 0.6, 1.0):
        got = coverage_threshold(n_frames, row_a, len_a, row_b, len_b, cost, target)
        fitting = [c for c in np.unique(cost) if covered(c) <= target]
        if len(fitting) == len(np.unique(cost)):
            assert got == np.inf
        elif fitting:
            assert got == max(fitting)
        else:
            assert got < cost.min()
        assert covered(got) <= target


@pytest.mark.parametrize("block", [4096, 7])
def test_discovery_stops_at_the_target_coverage(tmp_path, monkeypatch, block):
    """The operating point: the pairs kept cover at most the target share of the frames, and the next
    pair by DTW cost (in a discovery at the looser floor) would take them past it; trimming the best
    pairs a block at a time gives what trimming all of them first gives."""
    from speechreps.discover import core
    from speechreps.discover.config import DiscoverConfig
    from speechreps.discover.core import discover, frame_coverage, operating_threshold, restrict

    monkeypatch.setattr(core, "TRIM_BLOCK", block)
    arrays, _ = make_word_corpus()
    loose = discover(arrays, DiscoverConfig(**{**SMALL, "trim": 20}))  # z 2.5, below the coverage floor
    for target in (0.1, 0.3):
        cfg = DiscoverConfig(**{**SMALL, "trim": 20, "target_coverage": target, "coverage_floor_z": 3.0})
        found = discover(arrays, cfg)
        assert 0 < found.stats["coverage_frames"] <= target < loose.stats["coverage_frames"]
        assert found.threshold == pytest.approx(operating_threshold(loose, cfg))
        assert sorted(found.cost.tolist()) == sorted(loose.cost[loose.cost <= found.threshold].tolist())
        same = restrict(loose, found.threshold, cfg)
        spans = lambda d: sorted(zip(d.cost.tolist(), d.start_a.tolist(), d.end_a.tolist(), d.start_b.tolist(),
                                     d.end_b.tolist()))
        assert spans(found) == spans(same)
        nxt = loose.cost[loose.cost > found.threshold].min()
        assert restrict(loose, nxt, cfg).stats["coverage_frames"] > target
        assert found.stats["coverage_frames"] == frame_coverage(found.store.n_frames, *_store_rows(found))
        assert len(found.cost) == found.stats["n_pairs"]


def _store_rows(found):
    to_row = found.store.offsets[:-1] - found.store.key_start
    return (to_row[found.utt_a] + found.start_a, found.end_a - found.start_a,
            to_row[found.utt_b] + found.start_b, found.end_b - found.start_b)


def test_cluster_resolution_is_relative_to_the_graph():
    """The resolution means the same for a few pairs as for many: separate pairs are clusters of two
    at any count (the absolute resolution of before, 1000, left a graph of 5 pairs as 10 single nodes),
    and a random graph and four disjoint copies of it split into about as many clusters per node."""
    from speechreps.discover.cluster import cluster_pairs

    for p in (5, 500):
        u = np.arange(p)
        c = cluster_pairs(u, u * 0, u * 0 + 40, u + p, u * 0, u * 0 + 40, 0.9, np.full(p, 0.7), 0.5, 0)
        assert c.n_clusters == p and sorted(set(np.bincount(c.node_cluster).tolist())) == [2]

    rng = np.random.default_rng(3)
    p = 60
    ua, ub = rng.integers(0, 8, size=p), rng.integers(8, 16, size=p)
    sa, sb = rng.integers(0, 20, size=p) * 50, rng.integers(0, 20, size=p) * 50
    w = rng.uniform(0.4, 0.9, size=p)
    one = cluster_pairs(ua, sa, sa + 40, ub, sb, sb + 40, 0.9, w, 0.5, 0)
    copies = np.repeat(np.arange(4), p) * 16
    four = cluster_pairs(np.tile(ua, 4) + copies, np.tile(sa, 4), np.tile(sa, 4) + 40, np.tile(ub, 4) + copies,
                         np.tile(sb, 4), np.tile(sb, 4) + 40, 0.9, np.tile(w, 4), 0.5, 0)
    ratio_one = one.n_clusters / len(one.node_cluster)
    ratio_four = four.n_clusters / len(four.node_cluster)
    assert ratio_one < 0.9 and abs(ratio_four - ratio_one) < 0.1 * ratio_one


def test_discover_cli_operating_point_options(tmp_path, capsys):
    arrays, _ = make_word_corpus(n_utts=8)
    save_archive(tmp_path / "u.npz", arrays)
    base = ["discover", str(tmp_path / "u.npz")]
    small = ["--window-lengths", "30,45", "--hop", "3", "--index", "exact"]
    floor = ["--coverage-floor-z", "2.5"]  # the toy corpus's pairs lie 2.5-4 deviations below random ones
    runs = {"z": ["--dtw-z", "2.5"], "inv": ["--term-inventory", *floor],
            "cov": ["--target-coverage", "0.2", "--trim", "20", *floor]}
    for name, extra in runs.items():
        assert cli.main(base + [str(tmp_path / name), *small, *extra]) == 0
    conf = {name: json.loads((tmp_path / name / "discover.json").read_text()) for name in runs}
    assert conf["z"]["config"]["target_coverage"] is None and conf["z"]["config"]["trim"] == 0
    assert (conf["inv"]["config"]["target_coverage"], conf["inv"]["config"]["trim"]) == (0.28, 40)
    assert (conf["cov"]["config"]["target_coverage"], conf["cov"]["config"]["trim"]) == (0.2, 20)
    assert conf["cov"]["config"]["coverage_floor_z"] == 2.5
    assert conf["inv"]["stats"]["coverage_frames"] <= 0.28 and conf["cov"]["stats"]["coverage_frames"] <= 0.2
    capsys.readouterr()
    for bad, word in ((["--extend", "10", "--trim", "20"], "trim"), (["--target-coverage", "1.5"], "target_coverage"),
                      (["--trim", "-1"], "trim")):
        assert cli.main(base + [str(tmp_path / "bad"), *small, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and word in err
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------------------------
# Discovery on a corpus made in code: repeated "words" (smooth random trajectories) in noise


def make_word_corpus(n_utts: int = 24, n_words: int = 5, dim: int = 13, seed: int = 0):
    """Utterances of 4 words each from a small vocabulary, each token time-warped and noisy, with
    noise gaps between words; returns ({key: frames}, [WordAlignment])."""
    rng = np.random.default_rng(seed)
    templates = []
    for _ in range(n_words):
        walk = np.cumsum(rng.standard_normal((int(rng.integers(45, 60)), dim)), axis=0)
        kernel = np.ones(5) / 5
        templates.append(np.stack([np.convolve(walk[:, d], kernel, mode="same") for d in range(dim)], axis=1))
    arrays, words = {}, []
    for u in range(n_utts):
        utt = f"s{u % 6:02d}_{u:03d}"
        pieces, t = [rng.standard_normal((10, dim)) * 0.5], 10
        for w in rng.integers(0, n_words, size=4):
            tpl = templates[w]
            n = int(len(tpl) * rng.uniform(0.9, 1.1))
            warped = np.stack([np.interp(np.linspace(0, len(tpl) - 1, n), np.arange(len(tpl)), tpl[:, d])
                               for d in range(dim)], axis=1)
            pieces.append(warped + 0.3 * rng.standard_normal(warped.shape))
            words.append(WordAlignment(utt, t / 100, (t + n) / 100, f"word{w}"))
            t += n
            gap = rng.standard_normal((10, dim)) * 0.5
            pieces.append(gap)
            t += len(gap)
        x = np.concatenate(pieces).astype(np.float32)
        arrays[format_key(utt, 0, len(x))] = x
    return arrays, words


SMALL = {"window_lengths": (30, 45), "hop": 3, "index": "exact", "dtw_z": 2.5}


def test_extend_pairs_grows_a_fragment_to_the_repeated_stretch_and_no_further():
    """A 60-frame pattern repeated in two utterances amid random frames; the pair starts as its frames
    20-40 in both. Growing by 5 frames at a time must reach exactly the pattern: its frames align at no
    cost, any context frame costs about 1 (random unit vectors)."""
    from speechreps.discover.verify import extend_pairs, pair_dtw

    rng = np.random.default_rng(0)

    def unit(n):
        v = rng.standard_normal((n, 16))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    pattern = unit(60)
    a = np.concatenate([unit(50), pattern, unit(50)])  # pattern at rows 50-109
    b = np.concatenate([unit(30), pattern, unit(40)])  # pattern at rows 160 + 30 = 190-249
    units = np.concatenate([a, b]).astype(np.float32)
    offsets = np.array([0, len(a), len(a) + len(b)])
    row_a, row_b, length = np.array([70]), np.array([210]), np.array([20])
    cost = pair_dtw(units, row_a, length, row_b, length)
    ra, la, rb, lb, c = extend_pairs(units, offsets, np.array([0]), row_a, length, np.array([1]), row_b, length,
                                     cost, threshold=0.3, max_extend=40, step=5, slack=0.01)
    assert (ra[0], la[0], rb[0], lb[0]) == (50, 60, 190, 60)
    assert c[0] < 0.01
    # at most max_extend per side, and never past an utterance's first frame
    ra, la, rb, lb, _ = extend_pairs(units, offsets, np.array([0]), row_a, length, np.array([1]), row_b, length,
                                     cost, threshold=0.3, max_extend=10, step=5, slack=0.01)
    assert (ra[0], la[0], rb[0], lb[0]) == (60, 40, 200, 40)
    edge = np.concatenate([pattern, unit(20)]).astype(np.float32)  # pattern from the utterance's first frame
    units2 = np.concatenate([edge, b]).astype(np.float32)
    offsets2 = np.array([0, len(edge), len(edge) + len(b)])
    row_b2 = np.array([len(edge) + 50])
    cost2 = pair_dtw(units2, np.array([20]), length, row_b2, length)
    ra, la, rb, lb, _ = extend_pairs(units2, offsets2, np.array([0]), np.array([20]), length, np.array([1]), row_b2,
                                     length, cost2, threshold=0.3, max_extend=40, step=5, slack=0.01)
    assert (ra[0], la[0]) == (0, 60) and (rb[0], lb[0]) == (len(edge) + 30, 60)


def test_discover_finds_the_repeated_words(tmp_path):
    from speechreps.discover.config import DiscoverConfig
    from speechreps.discover.pipeline import discover_to_folder, gold_for
    from speechreps.data.alignments import write_wrd

    arrays, words = make_word_corpus()
    write_wrd(tmp_path / "gold.wrd", words)
    summary = discover_to_folder(arrays, tmp_path / "out", DiscoverConfig(**SMALL), gold=tmp_path / "gold.wrd",
                                 log=lambda m: None)
    pairs = read_term_pairs(tmp_path / "out" / "pairs.txt")
    assert len(pairs) >= 20
    # each pair's two segments lie mostly inside tokens of one word
    by_utt = {}
    for w in gold_for(tmp_path / "gold.wrd", arrays):
        by_utt.setdefault(w.utt, []).append(w)

    def label(utt, s, e):
        best = max(by_utt[utt], key=lambda w: min(e, w.end * 100) - max(s, w.start * 100))
        return best.word

    same = [label(p.utt1, p.start1, p.end1) == label(p.utt2, p.start2, p.end2) for p in pairs]
    assert np.mean(same) >= 0.9
    scores = summary["scores"]
    assert scores["ned_pairs"] < 0.3 and scores["coverage"] > 0.3
    # the term archive: word-token keys whose labels are the clusters of the pair file
    terms = load_archive(tmp_path / "out" / "terms.npz")
    keys = [parse_word_key(k) for k in terms]
    assert {k.label for k in keys} <= {p.cluster for p in pairs} | {k.label for k in keys}
    assert all(terms[str(k)].shape == (k.n_frames, 13) for k in keys)
    assert (tmp_path / "out" / "clusters.txt").read_text().startswith("Class pt")
    assert json.loads((tmp_path / "out" / "discover.json").read_text())["stats"]["n_pairs"] == \
        summary["stats"]["n_pairs"]


def test_discover_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["discover", str(tmp_path / "missing.npz"), str(tmp_path / "out")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    save_archive(tmp_path / "a.npz", {"u1_000000-000050": np.zeros((50, 3), np.float32)})
    assert cli.main(["discover", str(tmp_path / "a.npz"), str(tmp_path / "out"), "--hop", "0"]) == 2
    assert "hop" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# A corpus without any alignment: discover -> train on the discovered pairs -> extract


def test_unaligned_corpus_discover_train_extract(tmp_path, monkeypatch, capsys):
    from speechreps.data.registry import register_dataset

    from test_datasets import write_config

    arrays, _ = make_word_corpus(n_utts=24)
    keys = list(arrays)
    by_speaker = {s: [k for k in keys if k.startswith(s)] for s in ("s00", "s01", "s02", "s03", "s04", "s05")}
    train = [k for s in ("s00", "s01", "s02", "s03") for k in by_speaker[s]]
    for split, part in (("train", train), ("validation", by_speaker["s04"]), ("test", by_speaker["s05"])):
        save_archive(tmp_path / f"{split}.npz", {k: arrays[k] for k in part})
    register_dataset(tmp_path / "data_paths.json", "raw",
                     {f"{s}_data": tmp_path / f"{s}.npz" for s in ("train", "validation", "test")})
    write_config(tmp_path / "config.json")
    monkeypatch.chdir(tmp_path)
    small = ["--window-lengths", "30,45", "--hop", "3", "--index", "exact", "--dtw-z", "2.5"]
    assert cli.main(["discover", "train.npz", "disc", *small, "--max-pairs-per-cluster", "3"]) == 0
    common = ["--language", "raw", "--data-paths", "data_paths.json", "--no-progress"]
    assert cli.main(["train", "frame_cae", "config.json", "ckpt", *common, "--pairs", "disc/pairs.txt"]) == 0
    assert cli.main(["extract", "frame_cae", "config.json", "ckpt", *common, "--save_path", "feats",
                     "--extract-training"]) == 0
    feats = load_archive(tmp_path / "feats" / "raw_train_utterances_frame_cae_bottleneck.npz")
    assert list(feats) == train
    assert all(feats[k].shape == (len(arrays[k]), 6) for k in feats)
    # second round: discovery runs on the trained model's features as on any archive
    assert cli.main(["discover", "feats/raw_train_utterances_frame_cae_bottleneck.npz", "disc2", *small[:-1], "1"]) == 0
    assert read_term_pairs(tmp_path / "disc2" / "pairs.txt")


def test_zero_resource_selection_compares_pseudo_and_gold_picks(tmp_path):
    from speechreps.zero_resource import _selection

    rows = [{"epoch": 1, "loss": 1.0, "val_ap": 0.30, "ref_val_ap": 0.40},
            {"epoch": 2, "loss": 0.9, "val_ap": 0.50, "ref_val_ap": 0.45},
            {"epoch": 3, "loss": 0.8, "val_ap": 0.45, "ref_val_ap": 0.47}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sel = _selection(tmp_path)
    assert (sel["pseudo_epoch"], sel["gold_epoch"], sel["same"]) == (2, 3, False)
    assert sel["gold_ap_at_pseudo_epoch"] == 0.45 and sel["epochs"] == [1, 2, 3]


@pytest.mark.parametrize("rep", ["capc", "frame_cae"])
def test_discovered_pair_models_get_the_gold_models_steps(tmp_path, rep):
    """An epoch budget becomes the gold-pair model's steps (epochs x its batches per epoch), so fewer
    discovered pairs do not mean less training; a step budget, or a dataset without gold pairs, stays."""
    import dataclasses
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_datasets import TINY_CONFIG, make_toy_dataset

    from speechreps.config import config_from_dict
    from speechreps.data.datasets import make_training_set
    from speechreps.data.registry import load_dataset, register_dataset
    from speechreps.model_types import MODEL_TYPES
    from speechreps.zero_resource import gold_step_budget

    data_paths = make_toy_dataset(tmp_path / "toy")
    cfg = config_from_dict({**TINY_CONFIG[rep], "num_epochs": 3}, rep)
    gold = make_training_set(MODEL_TYPES[rep].batch_kind, cfg, load_dataset(data_paths, "toy"))
    budget = gold_step_budget(rep, cfg, data_paths, "toy")
    assert len(gold.sampler) > 1
    assert (budget.num_steps, budget.steps_per_epoch) == (3 * len(gold.sampler), len(gold.sampler))
    stepped = dataclasses.replace(cfg, num_steps=7, steps_per_epoch=7)
    assert gold_step_budget(rep, stepped, data_paths, "toy") is stepped
    raw = json.loads(Path(data_paths).read_text())  # the same utterances, no pairs and no word tokens
    register_dataset(data_paths, "bare", {k[len("toy_"):]: v for k, v in raw.items() if k.endswith("utterances")})
    assert gold_step_budget(rep, cfg, data_paths, "bare") is cfg


def test_discovery_on_a_label_free_models_features(tmp_path, monkeypatch):
    """``--discover-on apc``: discovery reads the model's features of the utterances (last.pt), the pairs
    index the utterances' frames and the discovered terms are cut from the MFCCs, the twin's feature space."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_datasets import TINY_CONFIG, make_toy_dataset

    from speechreps.config import config_from_dict
    from speechreps.data.datasets import make_training_set
    from speechreps.data.registry import load_dataset
    from speechreps.errors import UserError
    from speechreps.models import build_model
    from speechreps.train.trainer import Trainer, seed_everything
    from speechreps import zero_resource
    from speechreps.extract import utterance_features
    from speechreps.trained import load_trained_model
    from speechreps.zero_resource import _discover_stage, check_discover_on

    # the toy words are short and the tiny model barely trained: a loose threshold, so that pairs exist
    monkeypatch.setattr(zero_resource, "LEARNED_DTW_Z", 1.0)
    monkeypatch.setattr(zero_resource, "LEARNED_Z_CURVE", (1.0,))

    data_paths = make_toy_dataset(tmp_path / "toy")
    ds = load_dataset(data_paths, "toy")
    cfg = config_from_dict({**TINY_CONFIG["apc"], "num_epochs": 1, "validate_every": 0}, "apc")
    seed_everything(0)
    model = build_model("apc", cfg)
    Trainer(model, make_training_set("utterance", cfg, ds), cfg, tmp_path / "apc", "apc", device="cpu",
            progress=False, log=lambda s: None, tensorboard=False).fit()
    mfcc = load_archive(ds.utterances("train"))
    trained = load_trained_model(tmp_path / "apc", "apc", prefer="last")[0]
    learned = utterance_features(trained, mfcc)[trained.default_layer]
    assert learned.keys() == mfcc.keys()
    assert all(learned[k].shape[0] == mfcc[k].shape[0] and learned[k].shape[1] != mfcc[k].shape[1] for k in mfcc)

    result = _discover_stage(data_paths, "toy", None, tmp_path / "disc", 1, on=("apc", tmp_path / "apc"))
    train = result["train"]
    assert train["features"] == "apc" and train["stats"]["n_pairs"] > 0
    terms = load_archive(train["files"]["terms"])
    assert terms and all(v.shape[1] == 13 for v in terms.values())  # MFCC frames, not the model's
    for p in read_term_pairs(train["files"]["pairs"]):
        assert 0 <= p.start1 < p.end1 and 0 <= p.start2 < p.end2

    check_discover_on(None, [])  # MFCCs
    check_discover_on("apc", ["apc"])
    for rep, types, message in [("capc", ["capc"], "trains on word pairs"), ("cpc", ["apc"], "trains no cpc"),
                                ("nope", ["apc"], "unknown --discover-on type")]:
        with pytest.raises(UserError, match=message):
            check_discover_on(rep, types)


def test_cluster_resolution_trades_grouping_for_purity(tmp_path):
    """--resolution reaches the clustering: a higher one splits the pair graph into more, smaller
    clusters, whose members pair up the same word more often (lower cluster NED), from the same pairs."""
    from speechreps.data.alignments import write_wrd

    arrays, words = make_word_corpus()
    save_archive(tmp_path / "utts.npz", arrays)
    write_wrd(tmp_path / "gold.wrd", words)
    small = ["--window-lengths", "30,45", "--hop", "3", "--index", "exact", "--dtw-z", "2.5"]
    summaries = {}
    for resolution in ("0.01", "0.5"):
        out = tmp_path / f"res{resolution}"
        args = ["discover", str(tmp_path / "utts.npz"), str(out), "--gold", str(tmp_path / "gold.wrd"), *small]
        assert cli.main(args + ["--resolution", resolution]) == 0
        summaries[resolution] = json.loads((out / "discover.json").read_text())
    low, high = summaries["0.01"], summaries["0.5"]
    assert low["config"]["resolution"] == 0.01 and high["config"]["resolution"] == 0.5
    assert low["stats"]["n_pairs"] == high["stats"]["n_pairs"]
    assert high["stats"]["n_clusters"] > low["stats"]["n_clusters"]
    assert high["scores"]["ned"] < low["scores"]["ned"]
    assert high["scores"]["coverage"] == low["scores"]["coverage"]
