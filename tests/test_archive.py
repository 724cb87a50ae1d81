import numpy as np
import pytest

from speechreps.data.archive import (
    Archive,
    format_key,
    load_archive,
    parse_utterance_key,
    parse_word_key,
    save_archive,
    speaker_rule,
)
from speechreps.errors import UserError


@pytest.mark.parametrize(
    "key,label,utt,start,end",
    [
        ("abandoned_s06_02a_044207-044257", "abandoned", "s06_02a", 44207, 44257),
        ("PT10000_s21_02b_027358-027413", "PT10000", "s21_02b", 27358, 27413),
        ("ndlela_nchlt-tso-001m-0007_000077-000127", "ndlela", "nchlt-tso-001m-0007", 77, 127),
    ],
)
def test_word_key_round_trip(key, label, utt, start, end):
    k = parse_word_key(key)
    assert (k.label, k.utt, k.start, k.end) == (label, utt, start, end)
    assert format_key(utt, start, end, label) == key
    assert k.n_frames == end - start


def test_utterance_key_round_trip():
    k = parse_utterance_key("s01_01a_003222-003255")
    assert (k.utt, k.start, k.end, k.label) == ("s01_01a", 3222, 3255, None)
    assert str(k) == "s01_01a_003222-003255"
    assert format_key("s01_01a", 3222, 3255) == "s01_01a_003222-003255"


@pytest.mark.parametrize("bad", ["noframes", "word_s01_12-ab", "word_0001-0002", "_s01_000001-000002", "w_s_000009-000001"])
def test_bad_keys_name_the_key(bad):
    with pytest.raises(UserError, match="key"):
        parse_word_key(bad)


def test_label_with_underscore_refused():
    with pytest.raises(UserError):
        format_key("s01_01a", 0, 10, "a_b")


def test_speaker_rules():
    assert speaker_rule("buckeye")("s06_02a") == "s06"
    assert speaker_rule(None)("en07_0012") == "en07"
    assert speaker_rule("nchlt")("nchlt-tso-001m-0007") == "001m"
    assert speaker_rule("nchlt")("nchlt_tso_001m_0007") == "001m"
    custom = speaker_rule(r"spk(?P<speaker>\d+)-")
    assert custom("spk12-utt3") == "12"
    with pytest.raises(UserError, match="nchlt"):
        speaker_rule("nchlt")("s06_02a")
    with pytest.raises(UserError, match="group"):
        speaker_rule(r"\w+")
    with pytest.raises(UserError, match="regular expression"):
        speaker_rule("(unclosed")


def test_archive_round_trip_is_atomic(tmp_path):
    arrays = {"a_s1_u_000000-000003": np.arange(6, dtype=np.float64).reshape(3, 2), "b_s1_u_000003-000004": np.ones((1, 2))}
    path = save_archive(tmp_path / "x.npz", arrays)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]  # no temporary left behind
    back = load_archive(path)
    assert list(back) == list(arrays)
    for k in arrays:
        assert back[k].dtype == np.float32
        np.testing.assert_array_equal(back[k], arrays[k])
    with Archive(path) as arc:
        assert len(arc) == 2 and arc.dim == 2


def test_archive_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        Archive(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(UserError, match="junk.npz"):
        Archive(tmp_path / "junk.npz")
    np.savez(tmp_path / "vec.npz", k=np.zeros(3))
    with pytest.raises(UserError, match="shape"):
        load_archive(tmp_path / "vec.npz")
    np.savez(tmp_path / "mixed.npz", a=np.zeros((2, 3)), b=np.zeros((2, 4)))
    with pytest.raises(UserError, match="mixes"):
        load_archive(tmp_path / "mixed.npz")
