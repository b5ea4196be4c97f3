"""Preprocessing pieces on files written here: SGM, tokenisation, cleaning and the latin-1 filter."""

from __future__ import annotations

import random

import pytest

from translation.preprocess import (
    PreprocessError,
    build_vocab,
    clean_corpus,
    latin1_filter,
    sgm_lines,
    tokenize_files,
)
from translation.sample import corpus


def test_sgm_segments_are_extracted_and_whitespace_normalised(tmp_path):
    sgm = tmp_path / "t.sgm"
    sgm.write_text('<srcset setid="t" srclang="any">\n<doc docid="1">\n<p>\n'
                   '<seg id="1">  Erster   Satz. </seg>\n'
                   '<seg id="2">\nZweiter &amp; Satz.</seg>\n'
                   '</p>\n</doc>\n</srcset>\n', encoding="utf-8")
    assert list(sgm_lines(sgm)) == ["Erster Satz.", "Zweiter &amp; Satz."]


def test_unterminated_segment_names_the_file(tmp_path):
    sgm = tmp_path / "bad.sgm"
    sgm.write_text('<seg id="1">never closed\n', encoding="utf-8")
    with pytest.raises(PreprocessError, match=r"bad\.sgm: unterminated <seg>"):
        list(sgm_lines(sgm))


@pytest.mark.slow
def test_parallel_tokenisation_matches_sequential_and_escapes_like_moses(tmp_path):
    src = tmp_path / "in.en"
    src.write_text("".join(en + "\n" for en, _ in corpus(random.Random(4), 4500, noise=0.0)), encoding="utf-8")
    tokenize_files([(src, tmp_path / "one.en", "en")], workers=1)
    tokenize_files([(src, tmp_path / "two.en", "en")], workers=2)
    one = (tmp_path / "one.en").read_text(encoding="utf-8").splitlines()
    assert one == (tmp_path / "two.en").read_text(encoding="utf-8").splitlines()
    assert len(one) == 4500
    assert any(" &apos;s " in line for line in one) and any("&quot;" in line for line in one)


def test_clean_and_latin1_filter_keep_pairs_aligned(tmp_path):
    de, en = tmp_path / "c.de", tmp_path / "c.en"
    de.write_text("ein  Satz\n\nzu " + "lang " * 80 + "\nFür 5 €\nok | gut\n", encoding="utf-8")
    en.write_text("a sentence\nempty\ntoo long\nfor 5 €\nok good\n", encoding="utf-8")
    out = {"de": tmp_path / "o.de", "en": tmp_path / "o.en"}
    assert clean_corpus({"de": de, "en": en}, out) == 3
    assert out["de"].read_text(encoding="utf-8").splitlines() == ["ein Satz", "Für 5 €", "ok gut"]
    assert out["en"].read_text(encoding="utf-8").splitlines() == ["a sentence", "for 5 €", "ok good"]
    assert latin1_filter(out, out) == 2
    assert out["de"].read_text(encoding="utf-8").splitlines() == ["ein Satz", "ok gut"]
    assert out["en"].read_text(encoding="utf-8").splitlines() == ["a sentence", "ok good"]


def test_corpora_of_different_length_are_refused(tmp_path):
    (tmp_path / "x.de").write_text("a\nb\n")
    (tmp_path / "x.en").write_text("a\n")
    out = {"de": tmp_path / "o.de", "en": tmp_path / "o.en"}
    with pytest.raises(PreprocessError, match=r"x\.de and .*x\.en differ in line count"):
        clean_corpus({"de": tmp_path / "x.de", "en": tmp_path / "x.en"}, out)
    assert not out["de"].exists() and not out["en"].exists()


def test_vocab_ranks_by_count_then_first_appearance_across_both_languages(tmp_path):
    (tmp_path / "t.en").write_text("b a@@ a@@\n", encoding="utf-8")
    (tmp_path / "t.de").write_text("c b\nd\n", encoding="utf-8")
    assert build_vocab([tmp_path / "t.en", tmp_path / "t.de"], tmp_path / "vocab") == 4
    assert (tmp_path / "vocab").read_text(encoding="utf-8").splitlines() == ["b", "a@@", "c", "d"]
