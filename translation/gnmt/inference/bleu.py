"""The reference's BLEU: de-BPE, Moses detokenisation with English rules, uncased intl sacreBLEU.

The reference calls `detokenizer.perl` without `-l`, so the German output is detokenised with the
English rules; we keep that quirk so scores compare with published ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import sacrebleu
from sacremoses import MosesDetokenizer

from translation.gnmt.data.vocabulary import remove_bpe

DETOKENIZER_LANG = "en"


def detokenize(bpe_lines: Iterable[str]) -> list[str]:
    detokenizer = MosesDetokenizer(lang=DETOKENIZER_LANG)
    return [detokenizer.detokenize(remove_bpe(line).split()) for line in bpe_lines]


def read_reference(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines]


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """Uncased sacreBLEU with the intl tokeniser (`sacrebleu -lc --tokenize intl`), 0-100."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True, tokenize="intl").score


def bleu_of_bpe_output(bpe_lines: Iterable[str], reference_path: Path) -> float:
    return corpus_bleu(detokenize(bpe_lines), read_reference(reference_path))
