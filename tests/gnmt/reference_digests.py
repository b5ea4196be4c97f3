"""Run the MLPerf GNMT reference's own preprocessing on the adversarial corpus and print its files' digests.

A development tool, not a test: it needs checkouts the project does not ship (and never commits):
mosesdecoder at 8c5eaa1 (tokenizer.perl, clean-corpus-n.perl, input-from-sgm.perl and their
non-breaking prefixes), subword-nmt at 48ba99e and the reference's `pytorch/scripts/filter_dataset.py`
(mlcommons/training, retired_benchmarks/gnmt). It runs the steps of the reference's `download_dataset.sh`
after the downloads, command for command (LC_ALL=C.UTF-8, `-threads 8`, clean-corpus-n 1 80, the
latin-1 filter, `learn_bpe.py -s MERGES`, `apply_bpe.py`, `get_vocab.py | cut -f1 -d ' '`), on the raw
files of tests/gnmt/adversarial.py, and prints the sha256 of every file the project also writes.
tests/gnmt/test_reference_bytes.py holds the printed digests as facts:

    python -m tests.gnmt.reference_digests --moses M --subword-nmt S --filter-script F --work /tmp/ref
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.gnmt.adversarial import write_raw
from translation.layout import LANGS, TEST_SETS

SEED, PAIRS, TEST_PAIRS, MERGES = 25, 6000, 400, 600


def compared_files(merges_suffix: str = "bpe.32000") -> list[str]:
    """The files both pipelines write, under the reference's names."""
    names = [f"{base}.{lang}" for base in ("train", *TEST_SETS) for lang in LANGS]
    names += [f"{base}.tok.{lang}" for base in ("train", *TEST_SETS) for lang in LANGS]
    names += [f"{base}.tok.clean.{lang}" for base in ("train", *TEST_SETS, "newstest_dev") for lang in LANGS]
    names += [merges_suffix, f"vocab.{merges_suffix}"]
    names += [f"{base}.{merges_suffix}.{lang}" for base in ("train.tok.clean", "newstest_dev.tok.clean",
                                                            "newstest2014.tok") for lang in LANGS]
    return names


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_reference(moses: Path, subword_nmt: Path, filter_script: Path, work: Path, merges: int) -> Path:
    out = work / "reference"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sources = write_raw(work / "raw", SEED, PAIRS, TEST_PAIRS)
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

    def sh(command: str) -> None:
        subprocess.run(["bash", "-c", f"set -eo pipefail; {command}"], cwd=out, env=env, check=True)

    for lang in LANGS:
        sh(f"cat {' '.join(str(p) for p in sources.train[lang])} > train.{lang}")
    for (name, lang), sgm in sources.sgm.items():
        sh(f"{moses}/scripts/ems/support/input-from-sgm.perl < {sgm} > {name}.{lang}")
    for lang in LANGS:
        for base in ("train", *TEST_SETS):
            sh(f"{moses}/scripts/tokenizer/tokenizer.perl -q -l {lang} -threads 8 < {base}.{lang} "
               f"> {base}.tok.{lang}")
    for base in ("train", *TEST_SETS):
        sh(f"{moses}/scripts/training/clean-corpus-n.perl {base}.tok de en {base}.tok.clean 1 80 2>/dev/null")
    for lang in LANGS:
        sh(f"cat newstest2015.tok.clean.{lang} newstest2016.tok.clean.{lang} > newstest_dev.tok.clean.{lang}")
    for base in ("train", "newstest_dev"):
        sh(f"python3 {filter_script} -f1 {base}.tok.clean.en -f2 {base}.tok.clean.de > /dev/null")
    sh(f"cat train.tok.clean.de train.tok.clean.en | python3 {subword_nmt}/learn_bpe.py -s {merges} > bpe.32000")
    for lang in LANGS:
        for base in ("train.tok.clean", "newstest_dev.tok.clean", "newstest2014.tok"):
            sh(f"python3 {subword_nmt}/apply_bpe.py -c bpe.32000 < {base}.{lang} > {base}.bpe.32000.{lang}")
    sh(f"cat train.tok.clean.bpe.32000.en train.tok.clean.bpe.32000.de | python3 {subword_nmt}/get_vocab.py "
       "| cut -f1 -d ' ' > vocab.bpe.32000")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moses", type=Path, required=True, help="mosesdecoder checkout at 8c5eaa1")
    parser.add_argument("--subword-nmt", type=Path, required=True, help="subword-nmt checkout at 48ba99e")
    parser.add_argument("--filter-script", type=Path, required=True, help="the reference's filter_dataset.py")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder")
    args = parser.parse_args(argv)
    out = run_reference(args.moses, args.subword_nmt, args.filter_script, args.work, MERGES)
    for name in compared_files():
        print(f'    "{name}": "{sha256(out / name)}",')
    return 0


if __name__ == "__main__":
    sys.exit(main())
