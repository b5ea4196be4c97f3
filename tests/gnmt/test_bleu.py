"""The BLEU pipeline (de-BPE, Moses detokenisation, uncased intl sacreBLEU) against the command-line tools, and
its score against sacreBLEU 1.2.10's, the version the reference pins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu

from tests.gnmt import bleu_corpus
from translation.gnmt.data.vocabulary import remove_bpe
from translation.gnmt.inference.bleu import bleu_of_bpe_output, corpus_bleu, intl_tokenize

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


# sacreBLEU 1.2.10's `tokenize_v14_international` of each line, recorded with sacreBLEU 1.2.10 itself (its spaces
# as it leaves them); sacreBLEU 2.x's intl tokeniser gives the last column (it reads ² and ½ as numbers, and the
# backslash as punctuation).
TOKENISED_BY_1_2_10 = [
    ("Die Fläche beträgt 30 m².", "Die Fläche beträgt 30 m²  .", "Die Fläche beträgt 30 m²."),
    ("Es waren ½, nicht ¼.", "Es waren ½  ,   nicht ¼  .", "Es waren ½ , nicht ¼."),
    ("C:\\Programme", "C  :  \\Programme", "C : \\ Programme"),
    ("„Wir sehen 3,5 Millionen – und 1.000 mehr!“", "„ Wir sehen 3,5 Millionen   –   und 1.000 mehr  !  “",
     "„ Wir sehen 3,5 Millionen – und 1.000 mehr ! “"),
    ("Preis: 25 € (netto)", "Preis  :   25  €    (  netto  )", "Preis : 25 € ( netto )"),
]


@pytest.mark.parametrize(("line", "by_1_2_10", "by_2_x"), TOKENISED_BY_1_2_10)
def test_the_intl_tokeniser_is_sacrebleu_1_2_10s(line: str, by_1_2_10: str, by_2_x: str) -> None:
    from sacrebleu.tokenizers.tokenizer_intl import TokenizerV14International  # noqa: PLC0415

    assert intl_tokenize(line) == by_1_2_10
    assert TokenizerV14International()(line) == by_2_x  # why the project tokenises itself


# sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True, tokenize="intl").score of sacreBLEU 1.2.10 (the
# call its `sacrebleu -lc --tokenize intl` makes) on tests/gnmt/bleu_corpus.corpus(), recorded with 1.2.10.
BLEU_1_2_10 = 44.65431819232846


@pytest.mark.slow
def test_bleu_of_a_newstest_sized_corpus_is_sacrebleu_1_2_10s() -> None:
    hypotheses, references = bleu_corpus.corpus()
    assert len(hypotheses) == len(references) == 3003
    assert corpus_bleu(hypotheses, references) == pytest.approx(BLEU_1_2_10, abs=1e-9)
    maintained = sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True, tokenize="intl").score
    assert abs(maintained - BLEU_1_2_10) > 0.01  # sacreBLEU 2.x alone gives 44.6437


@pytest.mark.slow
def test_sacrebleu_1_2_10_itself_gives_the_pinned_score(tmp_path: Path) -> None:
    """sacreBLEU 1.2.10 from PyPI, in a virtualenv of its own (it cannot share one with 2.x)."""
    venv = tmp_path / "sacrebleu-1.2.10"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "sacrebleu==1.2.10"],
                               capture_output=True, text=True, check=False)
    assert installed.returncode == 0, f"sacrebleu 1.2.10 from PyPI: {installed.stderr[-2000:]}"
    hypothesis, reference = bleu_corpus.write(tmp_path / "corpus")
    score = _cli([str(venv / "bin" / "python"), "-c",
                  "import sys, sacrebleu\n"
                  "hyp, ref = (open(p, encoding='utf-8').read().splitlines() for p in sys.argv[1:])\n"
                  "print(repr(sacrebleu.corpus_bleu(hyp, [ref], lowercase=True, tokenize='intl').score))\n",
                  str(hypothesis), str(reference)], "")
    assert float(score) == pytest.approx(BLEU_1_2_10, abs=1e-9)
    cli = _cli([str(venv / "bin" / "sacrebleu"), "-lc", "--tokenize", "intl", "-b", "-i", str(hypothesis),
                str(reference)], "")
    assert float(cli) == pytest.approx(BLEU_1_2_10, abs=0.01)  # the reference's own command, two decimals
