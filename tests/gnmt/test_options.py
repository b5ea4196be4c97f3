"""GNMT's division from its options, without torch: closed only at the reference's model, batch and evaluation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from translation.gnmt.options import REFERENCE_SETTINGS, division_line, division_of, parse_args
from translation.run_and_time import SAMPLE_TRAINING_ARGS

BASE = ["--data-dir", "d", "--seed", "1"]


def test_the_defaults_are_the_reference_and_closed() -> None:
    args = parse_args(BASE)
    assert {name: getattr(args, name) for name in REFERENCE_SETTINGS} == REFERENCE_SETTINGS
    assert (args.global_batch_size, args.batch_size, args.accumulation) == (1024, 128, 8)
    assert division_of([]) == "closed"
    assert division_line(args) == "division closed: the reference's model, batch and evaluation"
    # The settings the rules let a closed run tune.
    assert division_of(["--lr", "2e-3", "--warmup-steps", "100", "--remain-steps", "6453", "--decay-interval", "809",
                        "--max-length-train", "75", "--batch-size", "64"]) == "closed"


@pytest.mark.parametrize(("option", "named"), [
    (["--hidden-size", "96"], "--hidden-size 96 (the reference's: 1024)"),
    (["--num-layers", "2"], "--num-layers 2 (the reference's: 4)"),
    (["--global-batch-size", "2048"], "--global-batch-size 2048 (the reference's: 1024)"),
    (["--label-smoothing", "0"], "--label-smoothing 0 (the reference's: 0.1)"),
    (["--beam-size", "3"], "--beam-size 3 (the reference's: 5)"),
    (["--target-bleu", "20"], "--target-bleu 20 (the reference's: 24)"),
])
def test_a_setting_not_the_references_makes_the_run_open_and_is_named(
        option: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args([*BASE, *option])
    assert division_of(option) == "open"
    assert division_line(args) == f"division open: {named}"
    with pytest.raises(SystemExit) as exit_info:
        parse_args([*BASE, *option, "--submission-division", "closed"])
    assert exit_info.value.code == 2
    assert f"--submission-division closed, but the rules fix what this run changes: {named}" in capsys.readouterr().err


def test_the_sample_is_open_for_its_model_and_batch() -> None:
    assert division_line(parse_args([*BASE, *SAMPLE_TRAINING_ARGS])) == (
        "division open: --hidden-size 96 (the reference's: 1024); --global-batch-size 32 (the reference's: 1024)")


def test_asking_the_division_imports_no_torch() -> None:
    code = ("import sys\nfrom translation.gnmt.options import division_of\n"
            "print(division_of([]), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["closed", "False"]
