"""common.results.projection: time to train projected from a run's first evaluations, against real times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import convergence, layout, projection, scoring
from common.results.progress import read_progress
from tests.conftest import REPO_ROOT
from tests.results.shaped import NVIDIA_8XH100, Timing, mllog_line, real_minutes, write_log

# A run whose epochs end at 90, 150, 210, ... seconds, each result 10 s later.
EVEN = Timing(first_epoch=90.0, second_epoch=60.0, epoch=60.0, eval=10.0)
MASKRCNN_96 = convergence.reference("maskrcnn", 96)


def _project(folder: Path, **options) -> projection.SeriesProjection:
    return projection.project_folder(layout.project_folder(folder.parent.parent, folder.parent.name, folder.name),
                                     **options)


def test_the_arithmetic_of_a_run_with_known_epoch_times(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "box" / "maskrcnn"
    # epochs end at 90, 156, 216, 276, ... s (the second still warming up), each result 10 s later
    write_log(folder / "result_0.txt", Timing(first_epoch=90.0, second_epoch=66.0, epoch=60.0, eval=10.0), epochs=14)
    [run] = _project(folder).runs
    pace = run.pace
    # The steady pace runs from the 2nd evaluation to the 3rd; what it leaves unexplained at the 3rd is start-up.
    assert (pace.seconds_per_unit, pace.startup_s, pace.eval_s, pace.evaluations) == (60.0, 36.0, 10.0, 3)
    mean = MASKRCNN_96.mean
    half = 2 * MASKRCNN_96.stdev  # 0.77 epochs: the band is 13-15 epochs
    assert (run.target.low, run.target.high) == (13.0, 15.0) and 0.5 < half < 1.0
    assert run.minutes == pytest.approx(((216 + (mean - 3) * 60 + 10) / 60, (216 + 10 * 60 + 10) / 60 * 0.97,
                                         (216 + 12 * 60 + 10) / 60 * 1.03))
    assert run.real_minutes == pytest.approx((216 + 11 * 60 + 10.2) / 60) and run.converged_at == 14.0 and run.inside
    text = projection.render_text([_project(folder)])
    assert "result_0.txt          finished   14.82 min (13.35-16.24)  60.00 s per epoch, start-up 36.0 s, " \
           "eval 10.0 s, from 3 evaluation(s) up to 3 epochs; real 14.77 min, converged at 14 epochs: " \
           "inside the band" in text
    assert "global batch 96: 14.06 epochs to converge, band 13-15 (mlperf-logging RCP training_3.1.0 maskrcnn " \
           "at batch 96 (20 runs))" in text


def test_a_reference_without_spread_still_spans_an_evaluation(tmp_path: Path) -> None:
    """Every reference run at batch 48 converged at 14 epochs; a run converges only where it evaluates, so the
    band is 14 +/- half an evaluation interval, widened to the evaluation points: 13-15."""
    folder = tmp_path / "results" / "box" / "maskrcnn"
    write_log(folder / "result_0.txt", EVEN, epochs=14, global_batch=48)
    [run] = _project(folder).runs
    assert run.target.reference.stdev == 0.0 and (run.target.low, run.target.mean, run.target.high) == (13, 14, 15)


def test_a_log_cut_at_any_line_projects_from_what_it_holds(tmp_path: Path) -> None:
    whole = write_log(tmp_path / "whole.txt", EVEN, epochs=6).read_text()
    folder = tmp_path / "results" / "box" / "maskrcnn"
    cut = folder / "result_0.txt.partial"
    folder.mkdir(parents=True)
    seen = set()
    ends = [i + 1 for i, char in enumerate(whole) if char == "\n"]
    for end in sorted({0, *ends, *(e - 40 for e in ends)}):  # after each line, and in the middle of each record
        cut.write_text(whole[:end])
        [run] = _project(folder).runs
        assert run.kind == projection.UNFINISHED or end >= len(whole) - 1  # the last record whole
        evaluations = len(run.progress.evaluations)
        seen.add(evaluations)
        if evaluations == 0:
            assert run.minutes is None and run.problem
        elif evaluations == 1:
            assert run.pace.warm_up_included and run.pace.seconds_per_unit == 90.0  # run_start to epoch 1's end
        else:
            assert run.minutes is not None and not run.pace.warm_up_included
    assert seen == set(range(7))


def test_a_finished_run_is_projected_from_its_first_evaluations_only(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "box" / "maskrcnn"
    slower_later = Timing(first_epoch=90.0, second_epoch=60.0, epoch=60.0, eval=10.0)
    write_log(folder / "result_0.txt", slower_later, epochs=14)
    three, five = (_project(folder, first=n).runs[0] for n in (3, 5))
    assert (three.pace.evaluations, five.pace.evaluations) == (3, 5)
    assert three.pace.anchor.at == 3.0 and five.pace.anchor.at == 5.0


def test_samples_are_the_unit_of_an_llm_log(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "box" / "llama31_8b"
    timing = Timing(first_epoch=300.0, second_epoch=272.0, epoch=272.0, eval=7.0)
    write_log(folder / "result_0.txt", timing, epochs=14, benchmark="llama31_8b", global_batch=16, shape="samples")
    [run] = _project(folder).runs
    reference = convergence.reference("llama31_8b", 16)
    assert run.progress.unit == "samples" and run.pace.grid == 12288
    assert run.pace.seconds_per_unit == pytest.approx(272 / 12288)
    assert run.target.mean == reference.mean
    assert run.target.low == 12288 * 12 and run.target.high == 12288 * 14  # 161109 +/- 8775, on the grid
    assert run.minutes[0] == pytest.approx((300 + 2 * 272 + (reference.mean - 3 * 12288) * 272 / 12288 + 7) / 60)


def test_no_eval_start_means_no_evaluation_overhead(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "box" / "gnmt"
    write_log(folder / "result_0.txt", EVEN, epochs=5, benchmark="gnmt", global_batch=3072, shape="gnmt07")
    [run] = _project(folder).runs
    assert run.pace.eval_s == 0.0 and run.pace.seconds_per_unit == 60.0
    assert run.target.reference.source.startswith("published gnmt v0.7 logs (convergence.yaml) at batch 3072")


def test_without_a_reference_the_folders_converged_runs_are_taken(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "box" / "maskrcnn"
    write_log(folder / "probe_0.txt", EVEN, epochs=3, converged=False, global_batch=512)
    [alone] = _project(folder).runs
    assert alone.minutes is None
    assert alone.problem.startswith("mlperf-logging RCP training_3.1.0 maskrcnn: no point at or above batch 512")
    for index, epochs in enumerate((20, 21, 22)):
        write_log(folder / f"result_{index}.txt", EVEN, epochs=epochs, global_batch=512)
    series = _project(folder)
    probe = next(run for run in series.runs if run.kind == projection.PROBE)
    assert probe.target.mean == 21.0 and probe.target.reference.source == \
        "this folder's 3 converged run(s) at batch 512"
    assert probe.real_minutes is None  # a probe has no real time, even with run_stop


def test_evaluations_made_after_training_give_no_pace(tmp_path: Path) -> None:
    """Stable Diffusion's v3.1 logs score their checkpoints after training, the last one first."""
    log = tmp_path / "results" / "box" / "maskrcnn" / "result_0.txt"
    lines = [line for line in write_log(tmp_path / "x.txt", EVEN, epochs=3).read_text().splitlines()
             if '"eval_' not in line]
    for offset, epoch in enumerate((3, 2, 1)):
        lines[-1:-1] = [mllog_line(300 + 20 * offset, "eval_start", epoch_num=epoch),
                        mllog_line(310 + 20 * offset, "eval_accuracy", {"BBOX": 0.4, "SEGM": 0.4}, epoch_num=epoch)]
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(lines) + "\n")
    [run] = _project(log.parent).runs
    assert run.minutes is None and run.problem.startswith("its evaluations are not in training order")


@pytest.mark.parametrize("shape", ["nvidia", "project"])
def test_a_real_shaped_series_cut_after_three_epochs_lands_in_the_band(tmp_path: Path, shape: str) -> None:
    """The issue's proof on a series shaped like NVIDIA's v3.1 8xH100 Mask R-CNN logs: five runs converging at
    14, 13, 14, 15 and 14 epochs (the RCP's spread at batch 96), each cut after its third evaluation."""
    folder = tmp_path / "results" / "bai-1x8xH100" / "maskrcnn"
    epochs = [14, 13, 14, 15, 14]
    for index, count in enumerate(epochs):
        write_log(folder / f"result_{index}.txt", NVIDIA_8XH100, epochs=count, shape=shape)
    series = _project(folder)
    assert all(run.inside for run in series.runs)
    real = scoring.olympic([real_minutes(NVIDIA_8XH100, count) for count in epochs]).minutes
    score, how = series.score()
    assert how == "olympic mean of 5 projected runs"
    assert abs(score[0] / real - 1) < 0.10 and score[1] < real < score[2]
    assert series.real_score().minutes == pytest.approx(real)


def test_the_task_prints_json_per_run_and_per_series(tmp_path: Path, driver_env: dict[str, str]) -> None:
    results = tmp_path / "results"
    for index, count in enumerate([14, 14, 15]):
        write_log(results / "box" / "maskrcnn" / f"result_{index}.txt", NVIDIA_8XH100, epochs=count)
    proc = subprocess.run([sys.executable, "-m", "invoke", "results.project", "--dir", str(results), "--json"],
                          cwd=REPO_ROOT, env=driver_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    [series] = json.loads(proc.stdout)["series"]
    assert series["label"] == "box/maskrcnn" and series["first_evaluations"] == 3
    assert series["low_minutes"] < series["projected_score_minutes"] < series["high_minutes"]
    assert series["real_score_minutes"] == pytest.approx(real_minutes(NVIDIA_8XH100, 14))
    run = series["runs"][2]
    assert run["assumed"]["source"].startswith("mlperf-logging RCP training_3.1.0 maskrcnn at batch 96")
    assert (run["assumed"]["low"], run["assumed"]["high"], run["unit"]) == (13.0, 15.0, "epochs")
    assert run["converged_at"] == 15.0 and run["inside_band"] is True and run["kind"] == "finished"
    assert run["pace"]["evaluations_used"] == 3 and run["pace"]["evaluation_interval"] == 1.0


def test_an_empty_folder_is_named(tmp_path: Path, driver_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "invoke", "results.project", "--dir", str(tmp_path)],
                          cwd=REPO_ROOT, env=driver_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"results: {tmp_path}: no result_*.txt or result_*.txt.partial or "
                                          "probe_*.txt")


def test_read_progress_matches_each_result_to_its_own_eval_start(tmp_path: Path) -> None:
    log = write_log(tmp_path / "r.txt", NVIDIA_8XH100, epochs=4, shape="project")
    evaluations = read_progress(log).evaluations
    assert [e.at for e in evaluations] == [1.0, 2.0, 3.0, 4.0]
    assert [round(e.scored_s - e.trained_s, 3) for e in evaluations] == [11.0] * 4
