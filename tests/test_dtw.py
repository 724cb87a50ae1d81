"""DTW: the numba and torch kernels equal the plain reference (SciPy cdist + Python DP) to 1e-5."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechreps.errors import UserError
from speechreps.evaluate.dtw import (
    cosine_frame_distances,
    dtw_reference,
    l2_normalize,
    pairwise_dtw,
    pairwise_dtw_reference,
)


def _tricky_segments(seed: int = 0, dim: int = 5) -> list[np.ndarray]:
    """Random tokens with 1-frame tokens, zero frames, an all-zero token and very unequal lengths."""
    rng = np.random.default_rng(seed)
    segs = [rng.standard_normal((int(rng.integers(1, 12)), dim)).astype(np.float32) for _ in range(30)]
    segs[0] = segs[0][:1]
    segs[1] = rng.standard_normal((1, dim)).astype(np.float32)
    segs[2] = np.zeros((4, dim), np.float32)  # all-zero token
    segs[3] = np.zeros((1, dim), np.float32)
    segs[4][0] = 0.0  # one zero frame
    segs.append(rng.standard_normal((60, dim)).astype(np.float32))  # very long against 1-frame ones
    segs.append(segs[5].copy())  # an exact duplicate: distance ~0
    return segs


def test_reference_hand_case():
    # 1-D "frames" in 2-D: a = [e1, e1, e2], b = [e1, e2] -> cost 0 along (0,0),(1,0),(2,1); / (3 + 2)
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    a = np.stack([e1, e1, e2])
    b = np.stack([e1, e2])
    assert dtw_reference(a, b) == pytest.approx(0.0, abs=1e-12)
    # b = [e2]: every frame of a is aligned to e2: costs 1 + 1 + 0 = 2, / (3 + 1) = 0.5; path has 3 cells
    assert dtw_reference(a, e2[None]) == pytest.approx(0.5)
    assert dtw_reference(a, e2[None], normalize="path") == pytest.approx(2.0 / 3.0)
    # opposite directions: distance 2 per cell
    assert dtw_reference(e1[None], -e1[None]) == pytest.approx(2.0 / 2.0)


def test_zero_frames_are_at_distance_one():
    z = np.zeros((1, 3))
    x = np.array([[1.0, 2.0, 3.0]])
    assert cosine_frame_distances(z, x)[0, 0] == 1.0
    assert cosine_frame_distances(z, z)[0, 0] == 1.0
    assert not np.isnan(l2_normalize(z)).any()


@pytest.mark.parametrize("normalize", ["sum", "path"])
def test_numba_equals_reference(normalize):
    segs = _tricky_segments(0)
    ref = pairwise_dtw_reference(segs, normalize)
    fast = pairwise_dtw(segs, normalize, device="cpu")
    assert fast.shape == (len(segs) * (len(segs) - 1) // 2,)
    assert not np.isnan(fast).any()
    np.testing.assert_allclose(fast, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("normalize", ["sum", "path"])
def test_torch_cpu_equals_reference(normalize):
    pytest.importorskip("torch")
    segs = _tricky_segments(1)
    ref = pairwise_dtw_reference(segs, normalize)
    tor = pairwise_dtw(segs, normalize, device="cpu", backend="torch")
    np.testing.assert_allclose(tor, ref, atol=1e-5, rtol=0)


def test_numba_many_chunks_and_threads():
    # more tokens than one chunk of lanes, unsorted lengths, single thread == all threads == reference
    rng = np.random.default_rng(3)
    segs = [rng.standard_normal((int(rng.integers(1, 20)), 4)) for _ in range(45)]
    ref = pairwise_dtw_reference(segs)
    one = pairwise_dtw(segs, device="cpu", n_jobs=1)
    many = pairwise_dtw(segs, device="cpu")
    np.testing.assert_allclose(one, ref, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("normalize", ["sum", "path"])
def test_numba_query_groups_of_every_shape(monkeypatch, normalize):
    # The kernel multiplies the frames of a group of consecutive (length-sorted) queries against each
    # chunk at once. With a small group size: many groups, groups that span chunk boundaries, and
    # tokens longer than GROUP_ROWS (the budget becomes the longest token) must all give the reference.
    import speechreps.evaluate.dtw as dtw_module

    monkeypatch.setattr(dtw_module, "GROUP_ROWS", 13)
    segs = _tricky_segments(5)
    ref = pairwise_dtw_reference(segs, normalize)
    lens = np.sort([len(s) for s in segs])
    starts = dtw_module._groups(lens, max(13, int(lens.max())))
    assert len(starts) - 1 >= 4 and (lens > 13).any()
    assert starts[-2] == len(lens) - 1  # the longest token is a group of its own
    assert any(a // dtw_module.LANES != (b - 1) // dtw_module.LANES for a, b in zip(starts[:-1], starts[1:]))
    np.testing.assert_allclose(pairwise_dtw(segs, normalize, device="cpu", n_jobs=1), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(pairwise_dtw(segs, normalize, device="cpu"), ref, atol=1e-5, rtol=0)


def test_query_groups_cover_every_query_once():
    from speechreps.evaluate.dtw import _groups

    lens = np.array([1, 2, 3, 30, 4, 4, 4, 4, 40])
    starts = _groups(lens, 10)
    assert starts.tolist() == [0, 3, 4, 6, 8, 9]  # [1,2,3] [30] [4,4] [4,4] [40]
    assert _groups(np.array([5]), 10).tolist() == [0, 1]


def test_dtaidistance_converts_to_ours():
    dtw_ndim = pytest.importorskip("dtaidistance.dtw_ndim")
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((7, 3)), rng.standard_normal((11, 3))
    ua, ub = l2_normalize(a).astype(np.float64), l2_normalize(b).astype(np.float64)
    d = dtw_ndim.distance(ua, ub)  # sqrt of summed squared Euclidean = sqrt(2 x summed cosine)
    assert d**2 / 2 / (7 + 11) == pytest.approx(dtw_reference(a, b), abs=1e-6)


def test_errors():
    with pytest.raises(UserError):
        pairwise_dtw([np.zeros((0, 3)), np.ones((2, 3))], device="cpu")
    with pytest.raises(UserError):
        pairwise_dtw([np.ones((2, 3)), np.ones((2, 4))], device="cpu")
    with pytest.raises(UserError):
        pairwise_dtw([np.ones((2, 3)), np.ones((2, 3))], normalize="max", device="cpu")
    assert pairwise_dtw([np.ones((2, 3))], device="cpu").shape == (0,)
    assert math.isclose(pairwise_dtw([np.ones((2, 3)), np.ones((5, 3))], device="cpu")[0], 0.0, abs_tol=1e-6)
