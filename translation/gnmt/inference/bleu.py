r"""The reference's BLEU: de-BPE, Moses detokenisation with English rules, uncased intl sacreBLEU 1.2.10.

The reference calls `detokenizer.perl` without `-l`, so the German output is detokenised with the
English rules; we keep that quirk so scores compare with published ones.

The reference pins sacreBLEU 1.2.10 (`sacrebleu -lc --tokenize intl`). Its international tokeniser
(mteval-v14's rules: punctuation split off unless between digits, symbols split off) builds its
classes from Python's `unicodedata`: punctuation is category P* except the backslash (its class is
the characters joined unescaped, so `\]` escapes the bracket), symbols S*, digits `\d` (Nd only).
sacreBLEU 2.x uses the `regex` module's \p{P}, \p{S} and \P{N} instead, so `m²,` or `½.` split
otherwise (² and ½ are numbers of category No). `intl_tokenize` reproduces 1.2.10; sacreBLEU 2.x
counts the n-grams and computes the score as 1.2.10 does (tests/gnmt/test_bleu.py compares both
with sacreBLEU 1.2.10 itself on a newstest2014-sized corpus).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import sacrebleu
from sacremoses import MosesDetokenizer

from translation.gnmt.data.vocabulary import remove_bpe

DETOKENIZER_LANG = "en"


def _ranges(codes: list[int]) -> str:
    """Code points as a character class body of ranges."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in runs)


def _category(prefix: str, leave_out: str = "") -> str:
    """One character of a Unicode category as a regex. The characters beyond the BMP get a class of their own,
    tried only for such a character: one class of both is a list of ranges that `re` scans for every character."""
    codes = [c for c in range(sys.maxunicode)
             if unicodedata.category(chr(c)).startswith(prefix) and chr(c) not in leave_out]
    plane_0 = _ranges([c for c in codes if c <= 0xFFFF])
    beyond = _ranges([c for c in codes if c > 0xFFFF])
    return f"(?:[{plane_0}]|(?=[\U00010000-\U0010ffff])[{beyond}])"


@cache
def _intl_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    punctuation, symbol = _category("P", leave_out="\\"), _category("S")
    return (re.compile(rf"([^\d])({punctuation})"), re.compile(rf"({punctuation})([^\d])"),
            re.compile(rf"({symbol})"))


def intl_tokenize(line: str) -> str:
    """sacreBLEU 1.2.10's `--tokenize intl` of one line."""
    punctuation_after, punctuation_before, symbol = _intl_patterns()
    line = punctuation_after.sub(r"\1 \2 ", line)
    line = punctuation_before.sub(r" \1 \2", line)
    return symbol.sub(r" \1 ", line).strip()


def detokenize(bpe_lines: Iterable[str]) -> list[str]:
    detokenizer = MosesDetokenizer(lang=DETOKENIZER_LANG)
    return [detokenizer.detokenize(remove_bpe(line).split()) for line in bpe_lines]


def read_reference(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines]


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacreBLEU 1.2.10's `sacrebleu -lc --tokenize intl` (lowercased, then tokenised), 0-100."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")

    def tokenized(lines: list[str]) -> list[str]:
        return [intl_tokenize(line.lower().rstrip()) for line in lines]

    return sacrebleu.corpus_bleu(tokenized(hypotheses), [tokenized(references)], tokenize="none", force=True).score


def bleu_of_bpe_output(bpe_lines: Iterable[str], reference_path: Path) -> float:
    return corpus_bleu(detokenize(bpe_lines), read_reference(reference_path))
