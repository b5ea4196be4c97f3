"""`invoke gnmt.run --sample`: the shipped trainer reaches BLEU 24 on the sample, and its MLPerf log gets PASSED
from the 0.7.0 compliance checker. It is the costliest GNMT test, so one run answers every question here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.mlperf.compliance import check_log
from translation.layout import Wmt16Layout
from translation.run_and_time import SAMPLE_TRAINING_ARGS

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(1200)]

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SampleRun:
    proc: subprocess.CompletedProcess[str]
    log: Path

    def values(self, key: str) -> list[object]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in lines if ":::MLLOG " in line]
        return [r["value"] if r["key"] != "run_stop" else r["metadata"]["status"] for r in records if r["key"] == key]


@pytest.fixture(scope="module")
def sample_run(sample_layout: Wmt16Layout, tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    results = tmp_path_factory.mktemp("results")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "gnmt.run", "--sample", "--seed", "3",
         "--data-dir", str(sample_layout.data_dir), "--results-dir", str(results)],
        capture_output=True, text=True, timeout=900, check=False, cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # one thread: two spin against each other on 2 busy cores
    )
    return SampleRun(proc, results / "local" / "gnmt" / "result_0.txt")


def test_the_sample_run_reaches_bleu_24_and_its_log_passes_the_checker(sample_run: SampleRun) -> None:
    out = sample_run.proc.stdout.splitlines()
    assert sample_run.proc.returncode == 0, sample_run.proc.stderr[-3000:]
    assert "compliance (0.7.0): PASSED" in out
    assert [line for line in out if re.fullmatch(r"RESULT,RNN_TRANSLATOR,3,\d+,[^,]+,.+", line)]
    assert out[-1].startswith("local/gnmt: no score (1 scored run(s)")  # the series' summary line ends it
    assert check_log(sample_run.log, "0.7.0").summary() == "compliance (0.7.0): PASSED"
    bleu = sample_run.values("eval_accuracy")
    assert bleu[-1] >= 0.24 > max(bleu[:-1], default=0.0)  # stops at the first epoch on target
    assert len(bleu) <= int(SAMPLE_TRAINING_ARGS[SAMPLE_TRAINING_ARGS.index("--epochs") + 1])
    assert sample_run.values("run_stop") == ["success"]


def test_the_sample_run_maps_the_token_cache_and_logs_what_it_did(sample_run: SampleRun,
                                                                  sample_layout: Wmt16Layout) -> None:
    assert f"gnmt: corpora from token cache {sample_layout.token_cache}" in sample_run.proc.stderr
    # Flushed either way: the whole page cache where root may, else the dataset's files.
    assert sample_run.values("cache_clear") == [True]
    # Not the reference's model or batch: open, and the trainer said why.
    assert sample_run.values("submission_division") == ["open"]
    assert "gnmt: division open: --hidden-size 96 (the reference's: 1024); --global-batch-size 32 (the reference's: " \
           "1024)" in sample_run.proc.stderr
    assert sample_run.values("eval_samples") == [len(sample_layout.test_raw("de").read_text().splitlines())]
