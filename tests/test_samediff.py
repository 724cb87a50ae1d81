"""Same-different AP / PRB: hand-computed cases, fast == slow loop, archives and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechreps.cli import main
from speechreps.data.archive import save_archive
from speechreps.errors import UserError
from speechreps.evaluate import average_precision, evaluate_archive, pairwise_downsample, precision_recall_breakeven, samediff
from speechreps.evaluate.samediff import (
    average_precision_slow,
    matches_array,
    precision_recall_breakeven_slow,
)


def test_hand_computed_ap_prb():
    d = np.array([0.1, 0.2, 0.3, 0.4])
    m = np.array([True, False, True, False])
    # positives at ranks 1 and 3: precisions 1 and 2/3
    assert average_precision(d, m) == pytest.approx((1 + 2 / 3) / 2)
    # precision [1, 1/2, 2/3, 1/2] -> interpolated [1, 2/3, 2/3, 1/2]; recall [1/2, 1/2, 1, 1]
    # |recall - precision| smallest at rank 2: (1/2 + 2/3) / 2
    assert precision_recall_breakeven(d, m) == pytest.approx(7 / 12)
    # perfect ranking
    assert average_precision(np.array([0.1, 0.2, 0.9]), np.array([True, True, False])) == 1.0
    assert precision_recall_breakeven(np.array([0.1, 0.2, 0.9]), np.array([True, True, False])) == 1.0


def test_ties_follow_pair_order():
    # equal distances: the stable sort keeps the condensed (pdist) order
    assert average_precision(np.array([0.5, 0.5]), np.array([False, True])) == pytest.approx(0.5)
    assert average_precision(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(1.0)


def test_matches_array_is_pdist_order():
    m = matches_array(["a", "b", "a", "a"])
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert m.tolist() == [False, True, True, False, False, True]


def test_fast_equals_slow_loop():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 14))
        labels = rng.integers(0, 3, n)
        m = matches_array(labels.tolist())
        if not m.any():
            continue
        d = rng.integers(0, 4, len(m)).astype(float)  # many ties on purpose
        assert average_precision(d, m) == pytest.approx(average_precision_slow(d, m), abs=1e-12)
        assert precision_recall_breakeven(d, m) == pytest.approx(precision_recall_breakeven_slow(d, m), abs=1e-12)


def test_cross_speaker_hand_case():
    # labels a a a b, speakers x x y y; pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    d = np.array([0.1, 0.5, 0.2, 0.3, 0.6, 0.4])
    segs = [np.ones((2, 2))] * 4
    r = samediff(segs, list("aaab"), list("xxyy"), distances=d)
    # all pairs ranked: T F T F T F -> (1 + 2/3 + 3/5) / 3
    assert r.ap == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # (0,1) is same word, same speaker: removed; F T F T F -> (1/2 + 2/4) / 2
    assert r.ap_cross_speaker == pytest.approx(0.5)
    assert (r.n_pairs, r.n_positive, r.n_positive_cross_speaker, r.n_types) == (6, 3, 2, 2)
    assert set(r.to_dict()) >= {"ap", "prb", "ap_cross_speaker", "prb_cross_speaker", "seconds"}


def test_downsample_distance():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 3))
    d = pairwise_downsample([a, a * 2, -a, np.zeros((5, 3))])
    # scaling changes nothing, negation is opposite, a zero token is at distance 1
    assert d[0] == pytest.approx(0.0, abs=1e-12)
    assert d[1] == pytest.approx(2.0)
    assert d[2] == pytest.approx(1.0)


def _archive(rng, words=("alpha", "bravo", "charlie"), speakers=("s01", "s02", "s03"), reps=2):
    arrays = {}
    protos = {w: rng.standard_normal((int(rng.integers(4, 9)), 6)) for w in words}
    start = 0
    for spk in speakers:
        for w in words:
            for r in range(reps):
                x = np.repeat(protos[w], int(rng.integers(1, 3)), axis=0) + 0.3 * rng.standard_normal((1, 6))
                end = start + len(x)
                arrays[f"{w}_{spk}_{r:02d}_{start:06d}-{end:06d}"] = x.astype(np.float32)
                start = end
    return arrays


def test_evaluate_archive_separates_words(tmp_path):
    arrays = _archive(np.random.default_rng(2))
    r = evaluate_archive(arrays, distance="dtw", device="cpu")
    assert r.n_tokens == 18 and r.n_types == 3
    assert r.ap > 0.9 and r.ap_cross_speaker > 0.9
    path = save_archive(tmp_path / "words.npz", arrays)
    r2 = evaluate_archive(path, distance="downsample")
    assert r2.n_pairs == 18 * 17 // 2
    r3 = evaluate_archive(arrays, min_chars=6)  # only "charlie"
    assert r3.n_types == 1


def test_evaluate_archive_errors():
    with pytest.raises(UserError, match="does not parse"):
        evaluate_archive({"nokey": np.ones((3, 2))})
    with pytest.raises(UserError, match="at least 2"):
        evaluate_archive({"a_s01_x_000000-000003": np.ones((3, 2))})
    with pytest.raises(UserError, match="no positive"):
        evaluate_archive({"a_s01_x_000000-000003": np.ones((3, 2)), "b_s01_x_000003-000006": np.ones((3, 2))})
    with pytest.raises(UserError, match="does not exist"):
        evaluate_archive("/nonexistent/words.npz")


def test_cli(tmp_path, capsys):
    path = save_archive(tmp_path / "words.npz", _archive(np.random.default_rng(3)))
    out_json, out_png = tmp_path / "r.json", tmp_path / "pr.png"
    rc = main(["samediff", str(path), "--distance", "both", "--device", "cpu", "--jobs", "1",
               "--json", str(out_json), "--pr-curve", str(out_png), "--cross-speaker"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "dtw" in text and "downsample" in text and "AP" in text
    res = json.loads(out_json.read_text())
    assert [r["distance"] for r in res["results"]] == ["dtw", "downsample"]
    assert out_png.stat().st_size > 1000
    # user errors: one line, exit 2
    assert main(["samediff", str(tmp_path / "missing.npz")]) == 2
    bad = save_archive(tmp_path / "bad.npz", {"nolabel": np.ones((3, 2), np.float32)})
    assert main(["samediff", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "does not exist" in err and "does not parse" in err
