import pytest

from speechreps.data.alignments import (
    TermPair,
    WordAlignment,
    read_term_pairs,
    read_wrd,
    write_term_pairs,
    write_wrd,
)
from speechreps.errors import UserError, WarningCounter


def test_read_wrd(tmp_path):
    p = tmp_path / "a.wrd"
    p.write_text("nchlt_tso_001m_0007 0.77 1.27 ndlela\n\n# comment\ns01_01a 1 1.5 hello\n")
    words = read_wrd(p)
    assert words == [WordAlignment("nchlt_tso_001m_0007", 0.77, 1.27, "ndlela"), WordAlignment("s01_01a", 1.0, 1.5, "hello")]
    assert words[0].frames() == (77, 127)


@pytest.mark.parametrize(
    "line,message",
    [
        ("u1 0.5 0.4 word", "not after start"),
        ("u1 0.5 0.5 word", "not after start"),
        ("u1 -1 0.4 word", "negative"),
        ("u1 0.1 x word", "not numbers"),
        ("u1 0.1 0.2", "3 fields"),
    ],
)
def test_bad_wrd_line_names_file_and_line(tmp_path, line, message):
    p = tmp_path / "bad.wrd"
    p.write_text(f"u1 0.0 0.3 fine\n{line}\n")
    with pytest.raises(UserError, match=rf"bad\.wrd:2: .*{message}"):
        read_wrd(p)
    counter = WarningCounter()
    assert len(read_wrd(p, warnings=counter)) == 1 and len(counter) == 1
    with pytest.raises(UserError, match="bad.wrd:2"):
        read_wrd(p, warnings=WarningCounter(strict=True))


def test_wrd_and_pairs_round_trip(tmp_path):
    words = [WordAlignment("s1_u1", 0.12, 0.5, "alpha"), WordAlignment("s1_u1", 0.5, 1.01, "bravo")]
    write_wrd(tmp_path / "w.wrd", words)
    assert read_wrd(tmp_path / "w.wrd") == words
    pairs = [TermPair("pt04570", "s10_04a", 5828, 5861, "s10_02a", 28817, 28858)]
    write_term_pairs(tmp_path / "p.txt", pairs)
    assert (tmp_path / "p.txt").read_text() == "pt04570 s10_04a 5828 5861 s10_02a 28817 28858\n"
    assert read_term_pairs(tmp_path / "p.txt") == pairs


def test_bad_term_pairs(tmp_path):
    p = tmp_path / "pairs.txt"
    p.write_text("pt1 a 1 2 b 3\n")
    with pytest.raises(UserError, match="pairs.txt:1"):
        read_term_pairs(p)
    p.write_text("pt1 a 5 2 b 3 4\n")
    with pytest.raises(UserError, match="pairs.txt:1"):
        read_term_pairs(p)
    with pytest.raises(UserError, match="cannot be read"):
        read_term_pairs(tmp_path / "none.txt")
