"""clean-corpus-n.perl's rules (mosesdecoder 8c5eaa1, called with 1 80), each on pairs that sit on its
boundary, and filter_dataset.py's latin-1 filter. The expected results are what the Perl script does with
the same pairs (checked against it when these tests were written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from translation.clean import CleanError, CleanRules, clean_corpus, latin1_filter, normalise, rejection


def words(n: int, word: str = "w") -> str:
    return " ".join([word] * n)


@pytest.mark.parametrize(("line", "expected"), [
    ("a | b|c", "a bc"),  # `|` deleted (not factored) before whitespace is collapsed
    ("  a \t b\xa0c\u3000d\x85e  ", "a b c d e"),  # Perl's \s: tab, no-break space, ideographic space, NEL
    ("a\x1cb", "a\x1cb"),  # U+001C is no whitespace for Perl
])
def test_pipes_go_and_whitespace_collapses_before_any_count(line: str, expected: str) -> None:
    assert normalise(line, factored=False) == expected


def test_a_factored_corpus_keeps_its_pipes() -> None:
    assert normalise("a|N  b|V", factored=True) == "a|N b|V"


@pytest.mark.parametrize(("de", "en", "rule"), [
    ("", "w", "empty"),
    ("w", "", "empty"),
    (words(80), words(80), None),  # 80 words is the maximum
    (words(81), words(80), "too many words"),
    (words(80), words(81), "too many words"),
    (words(1), words(9), None),  # a ratio of exactly 9 is kept
    (words(2), words(18), None),
    (words(1), words(10), "length ratio"),
    (words(19), words(2), "length ratio"),
    ("x" * 1000, "w", None),  # a word of 1000 characters is kept
    ("x" * 1001, "w", "word too long"),
    ("w", "w " + "ä" * 1001, "word too long"),  # characters, not bytes
])
def test_each_rule_on_its_boundary(de: str, en: str, rule: str | None) -> None:
    assert rejection(de, en) == rule


def test_the_minimum_counts_words_too() -> None:
    assert rejection("a b", "a", CleanRules(min_words=2)) == "too few words"
    assert rejection("a b", "a b", CleanRules(min_words=2)) is None


def test_pipes_split_words_only_in_a_factored_corpus() -> None:
    word = "x" * 600 + "|" + "y" * 600
    assert rejection(word, "w", factored=True) is None
    assert rejection(normalise(word, factored=False), "w") == "word too long"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes("".join(line + "\n" for line in lines).encode())
    return path


def _run(tmp_path: Path, de: list[str], en: list[str]) -> tuple[int, list[str], list[str]]:
    src = {"de": _write(tmp_path / "c.de", de), "en": _write(tmp_path / "c.en", en)}
    out = {"de": tmp_path / "o.de", "en": tmp_path / "o.en"}
    kept = clean_corpus(src, out)
    de_out, en_out = (out[lang].read_text(encoding="utf-8").split("\n")[:-1] for lang in ("de", "en"))
    return kept, de_out, en_out


def test_the_corpus_keeps_the_pairs_the_rules_keep_and_stays_aligned(tmp_path: Path) -> None:
    de = ["ein  Satz", "|", words(81), "x" * 1001, "Für 5 €", "ok | gut", "zwei\rWörter"]
    en = ["a sentence", "pipe", "long", "long word", "for 5 €", "ok good", "two words"]
    kept, out_de, out_en = _run(tmp_path, de, en)
    assert kept == 4
    assert out_de == ["ein Satz", "Für 5 €", "ok gut", "zwei Wörter"]  # \r is whitespace, never a line end
    assert out_en == ["a sentence", "for 5 €", "ok good", "two words"]


def test_only_the_first_pair_decides_whether_the_corpus_is_factored(tmp_path: Path) -> None:
    kept, out_de, _ = _run(tmp_path, ["a|N b|V", "c|N"], ["x|N", "y"])
    assert (kept, out_de) == (2, ["a|N b|V", "c|N"])
    kept, out_de, _ = _run(tmp_path, ["a b", "c|N"], ["x", "y"])
    assert (kept, out_de) == (2, ["a b", "cN"])


def test_a_blank_factor_stops_with_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(CleanError, match=r"c\.de: blank factor in line 2: 'b \|\|N'"):
        _run(tmp_path, ["a|N", "b ||N"], ["x|N", "y|N"])
    assert not (tmp_path / "o.de").exists()


def test_sides_of_different_length_are_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(CleanError, match=r"c\.en is shorter than .*c\.de \(no line 2\)"):
        _run(tmp_path, ["a", "b"], ["a"])
    with pytest.raises(CleanError, match=r"c\.en is longer than .*c\.de"):
        _run(tmp_path, ["a"], ["a", "b"])


def test_latin1_filter_drops_pairs_with_either_side_outside_latin1(tmp_path: Path) -> None:
    paths = {"en": _write(tmp_path / "f.en", ["café", "5 €", "ok", "Straße"]),
             "de": _write(tmp_path / "f.de", ["Café", "5 Euro", "ok ✿", "Straße"])}
    assert latin1_filter(paths, paths) == 2
    assert paths["en"].read_text(encoding="utf-8") == "café\nStraße\n"
    assert paths["de"].read_text(encoding="utf-8") == "Café\nStraße\n"
