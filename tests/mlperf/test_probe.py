"""`run --probe`: a run stopped once its log can be projected, kept as probe_<i>.txt, the projection printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Config, Context

from common.backendai import benchmark_tasks, runs
from common.mlperf.tasks import run_task
from object_detection.tasks import CLUSTER
from tests.conftest import REPO_ROOT
from tests.mlperf.conftest import start_driver

PACED = "tests.mlperf.paced_training"


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = start_driver(args, env, module=PACED)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _records(path: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in path.read_text().splitlines()]


def test_a_probe_stops_after_three_evaluations_and_prints_the_projection(tmp_path: Path,
                                                                         driver_env: dict[str, str]) -> None:
    """The paced training's epochs end at 90, 150, 210, ... s, each result 10 s later; at batch 96 the RCP says
    14.06 epochs (band 13-15): (210 + 11.06 x 60 + 10) / 60 = 14.72 min, 13.26-16.14 with the 3% pace tolerance."""
    results = tmp_path / "results"
    code, out, err = _run(["--seed", "3", "--results-dir", str(results), "--system", "box", "--probe",
                           "--pause", "1.0"], driver_env)
    assert code == 0, err
    folder = results / "box" / "maskrcnn"
    assert sorted(p.name for p in folder.iterdir()) == ["probe_0.txt"]
    records = _records(folder / "probe_0.txt")
    evaluations = [r for r in records if r["key"] == "eval_accuracy"]
    assert 3 <= len(evaluations) < 14 and records[-1]["key"] == "run_stop"
    assert records[-1]["metadata"]["status"] == "aborted"
    assert f"probe: stopped it after {len(evaluations)} evaluation(s) logged" in out
    assert "RESULT," not in out and "compliance (" not in out
    lines = out.splitlines()
    assert lines[-3] == ("box/maskrcnn: projected score 14.72 min (13.26-16.14) (mean of 1 projected run(s) "
                         "(an olympic mean needs 3))")
    assert lines[-2] == ("    global batch 96: 14.06 epochs to converge, band 13-15 (mlperf-logging RCP "
                         "training_3.1.0 maskrcnn at batch 96 (20 runs))")
    assert lines[-1].startswith("    probe_0.txt           probe      14.72 min (13.26-16.14)  60.00 s per epoch, "
                                "start-up 30.0 s, eval 10.0 s, from ")


def test_a_probe_also_stops_after_its_minutes(tmp_path: Path, driver_env: dict[str, str]) -> None:
    code, out, err = _run(["--seed", "3", "--results-dir", str(tmp_path / "results"), "--probe",
                           "--probe-evaluations", "50", "--probe-minutes", "0.03", "--pause", "0.5"], driver_env)
    assert code == 0, err
    assert "probe: stopped it after " in out and " minute(s) after run_start;" in out
    assert "local/maskrcnn: projected score " in out


def test_a_run_that_ends_first_is_kept_as_a_probe_all_the_same(tmp_path: Path, driver_env: dict[str, str]) -> None:
    results = tmp_path / "results"
    code, out, err = _run(["--seed", "3", "--results-dir", str(results), "--probe", "--converge-at", "2",
                           "--pause", "0"], driver_env)
    assert code == 0, err
    assert "probe: the run ended before the probe's limit" in out
    assert _records(results / "local" / "maskrcnn" / "probe_0.txt")[-1]["metadata"]["status"] == "success"
    assert "from 2 evaluation(s) up to 2 epochs" in out


def test_summary_never_scores_a_probe(tmp_path: Path, driver_env: dict[str, str]) -> None:
    results = tmp_path / "results"
    for _ in range(2):
        code, _, err = _run(["--seed", "3", "--results-dir", str(results), "--probe", "--converge-at", "2",
                             "--pause", "0"], driver_env)
        assert code == 0, err
    folder = results / "local" / "maskrcnn"
    assert sorted(p.name for p in folder.iterdir()) == ["probe_0.txt", "probe_1.txt"]
    summary = subprocess.run([sys.executable, "-m", "invoke", "results.summary", "--dir", str(results)],
                             cwd=REPO_ROOT, env=driver_env, capture_output=True, text=True, timeout=300, check=False)
    assert summary.returncode == 1 and "no result_*.txt files" in summary.stderr
    project = subprocess.run([sys.executable, "-m", "invoke", "results.project", "--dir", str(results)],
                             cwd=REPO_ROOT, env=driver_env, capture_output=True, text=True, timeout=300, check=False)
    assert project.returncode == 0 and "probe_0.txt" in project.stdout and "probe_1.txt" in project.stdout


def _task():
    calls: dict[str, object] = {}

    def local(argv):
        calls["argv"] = argv
        return 0

    def cluster(_c, **options):
        calls["cluster"] = options

    return run_task("maskrcnn", local, "test", 5, "sample", cluster, {}), calls


def test_the_run_task_passes_the_probe_to_run_and_time() -> None:
    task, calls = _task()
    task.body(Context(Config()), data_dir="/data", probe=True, probe_minutes="7.5")
    argv = calls["argv"]
    assert argv[argv.index("--probe"):] == ["--probe", "--probe-evaluations", "3", "--probe-minutes", "7.5"]


def test_on_a_cluster_the_sessions_run_and_time_gets_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command the batch session runs: the benchmark's run_and_time with the probe's options (and no
    compliance verdict, which a stopped run would fail)."""
    task, calls = _task()
    task.body(Context(Config()), on_cluster=True, probe=True, probe_evaluations="2")
    options = calls["cluster"]
    assert options["run_args"] == ["--probe", "--probe-evaluations", "2"]
    submitted: list[runs.ClusterRun] = []
    monkeypatch.setattr(runs, "run_series", lambda spec: submitted.append(spec) or 0)
    benchmark_tasks.run_on_cluster(Context(Config()), CLUSTER, **{**options, "image": "r/p/mlperf-maskrcnn:1",
                                                                   "vfolder": "coco"})
    command = runs.startup_command(submitted[0], seed=1, session="s")
    assert command.startswith("python -m object_detection.run_and_time --data-dir /home/work/coco ")
    assert command.endswith(" --no-compliance --probe --probe-evaluations 2")
