"""The trainer's command line: MLPerf logs the 0.7.0 checker accepts, torchrun workers, bad input and faults."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.mlperf.compliance import check_log
from tests.gnmt.conftest import SMALL_TRAINING_ARGS
from translation.gnmt import main as trainer
from translation.layout import Wmt16Layout

pytestmark = [pytest.mark.slow, pytest.mark.training,
              pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(1200)]


def _records(log: Path) -> list[dict]:
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in lines if ":::MLLOG " in line]


def _values(log: Path, key: str) -> list[object]:
    return [r["value"] for r in _records(log) if r["key"] == key]


def _run_stop(log: Path) -> dict:
    (stop,) = [r for r in _records(log) if r["key"] == "run_stop"]
    return stop["metadata"]


def _train(data_dir: Path, log: Path, *extra: str) -> int:
    return trainer.main(
        ["--data-dir", str(data_dir), "--seed", "7", "--log-file", str(log), *SMALL_TRAINING_ARGS, *extra]
    )


def test_short_run_log_fails_only_the_quality_target(sample_layout: Wmt16Layout, tmp_path: Path) -> None:
    log = tmp_path / "gnmt.log"
    code = _train(sample_layout.data_dir, log, "--epochs", "1", "--beam-size", "3")

    assert code == trainer.EXIT_BELOW_TARGET
    verdict = check_log(log, "0.7.0")
    assert verdict.quality_target_missed
    assert verdict.other_complaints == []
    (bleu,) = _values(log, "eval_accuracy")
    assert 0.0 <= bleu < 0.24  # a fraction, as the 0.7.0 rules log BLEU
    assert _run_stop(log)["status"] == "aborted"
    keys = [r["key"] for r in _records(log)]
    assert keys.index("init_stop") < keys.index("run_start") < keys.index("train_samples")  # data is timed
    # This run flushed the page cache itself: all of it where the system lets it (root on the host), else the
    # dataset's files; the log says which.
    (flush,) = [r for r in _records(log) if r["key"] == "cache_clear"]
    assert flush["value"] is True
    assert flush["metadata"]["method"] == ("drop_caches" if os.access("/proc/sys/vm/drop_caches", os.W_OK)
                                           else "fadvise")


def test_two_gloo_workers_through_torchrun_report_the_global_batch(sample_layout: Wmt16Layout, tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "translation.run_and_time",
            "--seed",
            "5",
            "--nproc-per-node",
            "2",
            "--data-dir",
            str(sample_layout.data_dir),
            "--results-dir",
            str(results),
            "--system",
            "cpu2",
            "--sample",
            "--epochs",
            "1",
            "--beam-size",
            "2",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines = proc.stdout.splitlines()
    # torchrun turns any worker's non-zero exit (here 3, target not reached) into 1.
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "exitcode  : 3" in proc.stderr
    assert re.search(r": OK \(\d+ checks\)$", lines[0])  # the data verified before the clock
    assert lines[1].startswith("STARTING TIMING RUN AT ")
    [result] = [line for line in lines if line.startswith("RESULT,")]
    assert re.fullmatch(r"RESULT,RNN_TRANSLATOR,5,\d+,[^,]+,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [AP]M", result)
    assert lines[-1].startswith("cpu2/gnmt: no score (")  # the summary line ends the series
    assert "compliance (0.7.0): FAILED: quality target not reached" in lines
    log = results / "cpu2" / "gnmt" / "result_0.txt"
    assert _values(log, "global_batch_size") == [32]  # 2 workers x 16 sentences
    assert _values(log, "gradient_accumulation_steps") == [1]
    assert _values(log, "submission_platform") == ["cpu2"]  # run_and_time names the platform after --system
    assert check_log(log, "0.7.0").other_complaints == []


def test_missing_data_aborts_with_the_file_named(data_dir_copy: Path, tmp_path: Path, capsys) -> None:
    missing = Wmt16Layout(data_dir_copy).test_raw("de")
    missing.unlink()
    log = tmp_path / "gnmt.log"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    assert _train(data_dir_copy, log) == 1
    assert str(missing) in capsys.readouterr().err
    assert _run_stop(log)["status"] == "aborted"
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # an in-process caller gets its handlers back


def test_vocabulary_of_other_bpe_files_is_refused(data_dir_copy: Path, tmp_path: Path, capsys) -> None:
    vocab = Wmt16Layout(data_dir_copy).vocab
    vocab.write_text("".join(f"other{i}\n" for i in range(100)), encoding="utf-8")
    log = tmp_path / "gnmt.log"

    assert _train(data_dir_copy, log) == 1
    error = capsys.readouterr().err
    assert "train.tok.clean.bpe.32000.en" in error and "does not match these BPE files" in error
    assert _run_stop(log)["status"] == "aborted"


def test_non_finite_loss_aborts_the_run(sample_layout: Wmt16Layout, tmp_path: Path, capsys) -> None:
    log = tmp_path / "gnmt.log"

    assert _train(sample_layout.data_dir, log, "--lr", "inf") == 1
    assert "loss is nan" in capsys.readouterr().err
    assert "loss is nan" in _run_stop(log)["error"]


def test_sigterm_ends_the_log_with_an_abort(sample_layout: Wmt16Layout, tmp_path: Path, driver_env) -> None:
    """The trainer in a process of its own, signalled once its log says an epoch has begun."""
    log = tmp_path / "gnmt.log"
    child = subprocess.Popen(
        [sys.executable, "-m", "translation.gnmt.main", "--data-dir", str(sample_layout.data_dir), "--seed", "7",
         "--log-file", str(log), *SMALL_TRAINING_ARGS, "--epochs", "50"],
        env={**driver_env, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    for line in child.stdout:  # rank 0 prints each MLPerf line as it logs it
        if '"key": "epoch_start"' in line:
            break
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=120)

    assert child.returncode == trainer.EXIT_INTERRUPTED
    assert _run_stop(log) | {"file": None, "lineno": None} == {
        "file": None,
        "lineno": None,
        "status": "aborted",
        "error": "received SIGTERM",
    }


@pytest.mark.parametrize(("option", "value"), [("--epochs", "0"), ("--num-layers", "1"), ("--beam-size", "0")])
def test_impossible_settings_are_refused_before_anything_runs(option: str, value: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        trainer.main(["--data-dir", str(tmp_path), "--seed", "1", option, value])
    assert stop.value.code == 2
    assert option in capsys.readouterr().err
