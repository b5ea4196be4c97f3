"""Moses tokenisation of the hard cases, written from tokenizer.perl's rules (mosesdecoder 8c5eaa1).

Every expected line below is what `tokenizer.perl -q -l <lang> -threads 8` at 8c5eaa1 prints for the input
(perl 5.36); the comment says which rule decides. tests/gnmt/test_reference_bytes.py compares whole files
with the digests the Perl scripts gave for a generated adversarial corpus.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from translation.tokenizer import ReferenceTokenizer, tokenize_files

ENGLISH = [
    # A word ending in "." keeps it when its stem is a non-breaking prefix, contains a dot and a letter,
    # or the next word starts lowercase; otherwise the dot is split off.
    ("Mr. Smith arrived.", "Mr. Smith arrived ."),
    ("He lives in the U.S.", "He lives in the U.S."),
    ("It ends with Mr.", "It ends with Mr."),  # sentence-final prefix
    # Numeric-only prefixes (No, Art, pp) keep their dot only before a number.
    ("See No. 5 and No. Five.", "See No. 5 and No . Five ."),
    ("Art. 3 applies, Art. X does not.", "Art. 3 applies , Art . X does not ."),
    # "Rs" became a prefix after 8c5eaa1 (Moses 4da86c360): the reference splits it.
    ("Rs. 500 was paid.", "Rs . 500 was paid ."),
    # English apostrophes: split before the letters of a contraction, after a number before s.
    ("It's John's 1990's car, isn't it?", "It &apos;s John &apos;s 1990 &apos;s car , isn &apos;t it ?"),
    ("rock 'n' roll y'all", "rock &apos; n &apos; roll y &apos;all"),
    ("'Tis the season.", "&apos;Tis the season ."),
    # Escaping of & | < > [ ] ' " (tokenizer.perl's default, no -no-escape).
    ('a & b | c < d > e [f] "g"', "a &amp; b &#124; c &lt; d &gt; e &#91; f &#93; &quot; g &quot;"),
    ("state-of-the-art e-mail", "state-of-the-art e-mail"),  # no -a: hyphens stay inside words
    # Commas stay inside numbers only; a final comma after a number is split.
    ("5,300 and 3.5 and 1,5 but A,B,C and end 5,", "5,300 and 3.5 and 1,5 but A , B , C and end 5 ,"),
    ("Wait... what?..", "Wait ... what ? .."),  # runs of dots stay together
    ("He said 'stop.'", "He said &apos; stop . &apos; "),  # ".'" at the end, with Perl's trailing space
    # Letters of every script are \p{IsAlnum} in Perl; sacremoses' own tables lack CJK.
    ("中文句子。", "中文句子 。"),
    ("Unit\tsep  and\ttab", "Unit sep and tab"),
    ("http://example.com/a?b=1&c=2", "http : / / example.com / a ? b = 1 &amp; c = 2"),
    ("a\x1fb c", "ab c"),  # U+001F is no Perl whitespace: deleted as ASCII junk, not turned into a space
]

GERMAN = [
    ("Dr. Müller kam um 10 Uhr an.", "Dr. Müller kam um 10 Uhr an ."),
    ("Am 3. Oktober 1990 war es so.", "Am 3. Oktober 1990 war es so ."),  # 1-99 are German prefixes
    ("z.B. und u.a. usw. sind Abkürzungen.", "z.B. und u.a. usw. sind Abkürzungen ."),
    # Other languages than English: every apostrophe is split off on both sides.
    ("Wie geht's? Das ist Peters' Buch.", "Wie geht &apos; s ? Das ist Peters &apos; Buch ."),
    ("„Hallo“, sagte er.", "„ Hallo “ , sagte er ."),
    ("Nr. 5 ist gut. Das kostet 5 Mio.", "Nr. 5 ist gut . Das kostet 5 Mio."),
    ("Das ist der 2. Platz. Er ist Zweiter.", "Das ist der 2. Platz . Er ist Zweiter ."),
    ("Ein Satz mit Etc. Und weiter.", "Ein Satz mit Etc . Und weiter ."),  # prefixes are case-sensitive
    ("Er wohnt in der Str. Nummer 4.", "Er wohnt in der Str . Nummer 4."),  # "4" is a prefix, even at the end
]


def test_the_tokeniser_libraries_are_the_versions_that_give_the_reference_bytes() -> None:
    assert version("sacremoses") == "0.2.0"
    assert version("subword-nmt") == "0.3.8"


@pytest.mark.parametrize(("lang", "line", "expected"), [("en", *c) for c in ENGLISH] + [("de", *c) for c in GERMAN])
def test_hard_cases_tokenise_as_tokenizer_perl(lang: str, line: str, expected: str) -> None:
    assert ReferenceTokenizer(lang).tokenize_line(line + "\n") == expected + "\n"


@pytest.mark.parametrize("line", ["   \n", "\t\n", "\xa0\xa0\n", "\n"])
def test_blank_lines_are_printed_as_read(line: str) -> None:
    assert ReferenceTokenizer("en").tokenize_line(line) == line


def test_files_split_on_newline_only_and_workers_keep_the_order(tmp_path: Path) -> None:
    src = tmp_path / "in.en"
    lines = [f"Line {i}: it's a \"test\".\rstill line {i}" for i in range(4500)]
    src.write_bytes("".join(line + "\n" for line in lines).encode())
    tokenize_files([(src, tmp_path / "one.en", "en"), (src, tmp_path / "two.en", "en")], workers=1)
    tokenize_files([(src, tmp_path / "two.en", "en")], workers=2)
    one = (tmp_path / "one.en").read_bytes()
    assert one == (tmp_path / "two.en").read_bytes()
    assert one.count(b"\n") == 4500  # a \r inside a line never splits it
    assert one.splitlines()[7] == b"Line 7 : it &apos;s a &quot; test &quot; . still line 7"
