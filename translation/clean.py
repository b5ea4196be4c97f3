"""The reference's corpus filters: `clean-corpus-n.perl <corpus> de en <out> 1 80` (mosesdecoder 8c5eaa1),
then `filter_dataset.py` (pairs latin-1 cannot encode are dropped).

clean-corpus-n.perl reads both sides line by line and, in this order:
1. decides once, from the first pair, whether the corpus is factored (a `|` on either side);
2. unless factored, deletes every `|`; collapses whitespace runs (Perl's `\\s`) to one space and
   trims the ends;
3. drops the pair when either side is now empty;
4. counts the words (split on single spaces) and drops the pair when either side has more than
   80 or fewer than 1;
5. drops it when one side has more than 9 times the words of the other;
6. drops it when either side holds a word (a run without whitespace or `|`) over 1000 characters;
7. stops with an error on a blank factor (`" |"` or `"||"`); a corpus that is not factored has no `|` left.
`rejection` returns the rule that drops a pair, so each one can be tested on its own boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_path
from translation.steps import PreprocessError
from translation.tokenizer import PERL_WHITESPACE

_WHITESPACE = re.compile(f"[{PERL_WHITESPACE}]+")
_BLANK_FACTOR = re.compile(r"[ |]\|")


class CleanError(PreprocessError):
    """The two sides differ in length, or a factored corpus has a blank factor; names the file and line."""


@dataclass(frozen=True)
class CleanRules:
    """clean-corpus-n.perl's settings as the reference calls it: min 1, max 80, its defaults otherwise."""

    min_words: int = 1
    max_words: int = 80
    ratio: float = 9.0
    max_word_length: int = 1000

    def long_word(self, factored: bool) -> re.Pattern[str]:
        excluded = PERL_WHITESPACE + ("|" if factored else "")
        return re.compile(f"[^{excluded}]{{{self.max_word_length + 1}}}")


REFERENCE_RULES = CleanRules()


def normalise(line: str, factored: bool) -> str:
    if not factored:
        line = line.replace("|", "")
    return _WHITESPACE.sub(" ", line).strip(" ")


def word_count(line: str) -> int:
    return line.count(" ") + 1


def rejection(de: str, en: str, rules: CleanRules = REFERENCE_RULES, factored: bool = False) -> str | None:
    """The rule that drops a normalised (de, en) pair, or None when the pair is kept."""
    if not de or not en:
        return "empty"
    de_words, en_words = word_count(de), word_count(en)
    if en_words > rules.max_words or de_words > rules.max_words:
        return "too many words"
    if en_words < rules.min_words or de_words < rules.min_words:
        return "too few words"
    if en_words / de_words > rules.ratio or de_words / en_words > rules.ratio:
        return "length ratio"
    long_word = rules.long_word(factored)
    if long_word.search(en) or long_word.search(de):
        return "word too long"
    return None


def _lines(path: Path) -> Iterator[str]:
    """Lines without their `\\n`, split on `\\n` alone, as Perl's `<F>` and `chomp`."""
    if not path.is_file():
        raise CleanError(f"{path}: corpus file is missing")
    with path.open(encoding="utf-8", newline="\n") as f:
        yield from (line.removesuffix("\n") for line in f)


def clean_corpus(src: dict[str, Path], dst: dict[str, Path], rules: CleanRules = REFERENCE_RULES) -> int:
    """clean-corpus-n.perl on `src["de"]`/`src["en"]` into `dst`; returns the pairs kept."""
    kept = 0
    factored = False
    with (
        atomic_path(dst["de"]) as tmp_de,
        atomic_path(dst["en"]) as tmp_en,
        tmp_de.open("w", encoding="utf-8", newline="\n") as out_de,
        tmp_en.open("w", encoding="utf-8", newline="\n") as out_en,
    ):
        de_lines, en_lines = _lines(src["de"]), _lines(src["en"])
        for number, raw_de in enumerate(de_lines, 1):
            raw_en = next(en_lines, None)
            if raw_en is None:
                raise CleanError(f"{src['en']} is shorter than {src['de']} (no line {number})")
            if number == 1:
                factored = "|" in raw_de or "|" in raw_en
            de, en = normalise(raw_de, factored), normalise(raw_en, factored)
            if rejection(de, en, rules, factored):
                continue
            for side, text in (("de", de), ("en", en)):
                if _BLANK_FACTOR.search(text):
                    raise CleanError(f"{src[side]}: blank factor in line {number}: {text[:80]!r}")
            out_de.write(de + "\n")
            out_en.write(en + "\n")
            kept += 1
        if next(en_lines, None) is not None:
            raise CleanError(f"{src['en']} is longer than {src['de']}")
    return kept


def is_latin1(line: str) -> bool:
    try:
        line.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def latin1_filter(src: dict[str, Path], dst: dict[str, Path]) -> int:
    """filter_dataset.py: keep the pairs whose both sides latin-1 can encode; returns the pairs kept."""
    kept = 0
    with (
        atomic_path(dst["en"]) as tmp_en,
        atomic_path(dst["de"]) as tmp_de,
        tmp_en.open("w", encoding="utf-8", newline="\n") as out_en,
        tmp_de.open("w", encoding="utf-8", newline="\n") as out_de,
    ):
        for en, de in zip(_lines(src["en"]), _lines(src["de"]), strict=False):
            if is_latin1(en) and is_latin1(de):
                out_en.write(en + "\n")
                out_de.write(de + "\n")
                kept += 1
    return kept
