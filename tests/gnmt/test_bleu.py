"""The BLEU pipeline (de-BPE, Moses detokenisation, uncased intl sacreBLEU) against the command-line tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from translation.gnmt.data.vocabulary import remove_bpe
from translation.gnmt.inference.bleu import bleu_of_bpe_output, corpus_bleu

pytestmark = pytest.mark.timeout(600)  # its slow tests

BIN = Path(sys.executable).parent

# Decoder output as the trainer writes it: BPE subwords, Moses-tokenised and escaped.
HYPOTHESES_BPE = [
    "Die Katze sitzt auf der Mat@@ te .",
    "Gestern hat er ein neu@@ es Auto gek@@ auft , sagte sie .",
    "Das Kind &apos; s Buch ist &quot; rot &quot; .",
    "Ein gro@@ ßer Hund läuft über die Stra@@ ße",
    "Heute ( am Montag ) regnet es in der Stadt .",
    "Wir sehen 3,5 Millionen Menschen - und mehr !",
]
REFERENCES = [
    "Die Katze saß auf der Matte.",
    "Gestern hat er ein neues Auto gekauft, sagte sie.",
    'Das Kind\'s Buch ist "rot".',
    "Ein großer Hund läuft über die Straße.",
    "Heute (am Montag) regnet es in der Stadt.",
    "Wir sehen 3,5 Millionen Menschen - und mehr!",
]


def test_remove_bpe_joins_subwords_as_subword_nmt_sed_does() -> None:
    assert remove_bpe("gro@@ ßer Hund") == "großer Hund"
    assert remove_bpe("ein Hund@@") == "ein Hund"
    assert remove_bpe("a@@ b@@ c d") == "abc d"


def _cli(args: list[str], stdin: str) -> str:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_pipeline_reproduces_the_command_line_tools_on_fixed_files(tmp_path: Path) -> None:
    reference = tmp_path / "newstest2014.de"
    reference.write_text("\n".join(REFERENCES) + "\n", encoding="utf-8")
    # The reference's recipe: sed de-BPE | detokenizer (English rules) | sacrebleu -lc -tok intl.
    debpe = _cli(["sed", "-r", "s/(@@ )|(@@ ?$)//g"], "\n".join(HYPOTHESES_BPE) + "\n")
    detok = _cli([str(BIN / "sacremoses"), "-l", "en", "-j", "1", "detokenize"], debpe)
    hypothesis = tmp_path / "hyp.detok"
    hypothesis.write_text(detok, encoding="utf-8")
    expected = float(
        _cli(
            [str(BIN / "sacrebleu"), str(reference), "-i", str(hypothesis), "-lc", "-tok", "intl", "-b", "-w", "4"], ""
        )
    )

    score = bleu_of_bpe_output(HYPOTHESES_BPE, reference)

    assert 20.0 < expected < 100.0  # a fixed pair with a score that can tell pipelines apart
    assert score == pytest.approx(expected, abs=1e-4)


def test_bleu_is_uncased_and_needs_one_reference_per_hypothesis() -> None:
    assert corpus_bleu(["DIE KATZE SITZT AUF DER MATTE ."], ["die katze sitzt auf der matte ."]) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        corpus_bleu(["a", "b"], ["a"])
