"""`invoke results.summary`: bad input is named and skipped, the rest still prints, the exit code says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import layout, summary
from tests.conftest import REPO_ROOT
from tests.results.generated import Run, write_folder, write_log, write_submission

FIVE = [Run(10), Run(12), Run(11), Run(9), Run(13)]


def _invoke(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "invoke"), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """results/ of one system: a maskrcnn folder with three bad logs among good ones, a good gnmt folder,
    and a systems JSON that is not JSON."""
    results = tmp_path / "results"
    bench = results / "box" / "maskrcnn"
    write_folder(bench, "maskrcnn", [Run(10), Run(12), Run(11), Run(9)])
    write_log(bench / "result_4.txt", "maskrcnn", Run(13, drop_key="run_start"))
    write_log(bench / "result_5.txt", "maskrcnn", Run(14, cut_last_line=True))
    write_log(bench / "result_6.txt", "maskrcnn", Run(15, benchmark="gnmt"))
    write_folder(results / "box" / "gnmt", "gnmt", [Run(5 + i / 10) for i in range(10)])
    (tmp_path / "systems").mkdir()
    (tmp_path / "systems" / "box.json").write_text('{"submitter": "me", ')
    return results


def test_bad_input_is_named_and_the_rest_still_prints(messy: Path, driver_env: dict[str, str]) -> None:
    proc = _invoke(["results.summary", "--dir", str(messy), "--json"], driver_env)
    assert proc.returncode == 1
    skipped = {line.split(": ", 2)[1]: line.split(": ", 2)[2] for line in proc.stderr.splitlines()
               if line.startswith("skipped: ")}
    bench = messy / "box" / "maskrcnn"
    assert skipped[str(bench / "result_4.txt")] == "no run_start line (the run did not finish, or the log was cut)"
    assert skipped[str(bench / "result_5.txt")].startswith("line ")
    assert "is not a complete :::MLLOG record (the file ends there: cut short?)" in skipped[str(bench / "result_5.txt")]
    assert skipped[str(bench / "result_6.txt")] == (
        "submission_benchmark 'gnmt': a log of another benchmark in the maskrcnn folder")
    described = str(messy.parent / "systems" / "box.json")
    assert skipped[described].startswith("not JSON (")
    assert skipped[described].endswith("; result_summarizer leaves system box out")
    assert len(skipped) == 4
    data = {r["label"]: r for r in json.loads(proc.stdout)["results"]}
    assert data["box/gnmt"]["score_minutes"] == pytest.approx(sum(5 + i / 10 for i in range(1, 9)) / 8)
    assert data["box/maskrcnn"]["score_minutes"] is None
    assert data["box/maskrcnn"]["reason"] == "3 of 7 runs dropped (not converged or not compliant); at most 1 may be"
    assert [r["outcome"] for r in data["box/maskrcnn"]["runs"]] == ["scored"] * 4 + ["unreadable"] * 3


def test_a_clean_folder_exits_zero_and_prints_each_run(tmp_path: Path, driver_env: dict[str, str]) -> None:
    write_submission(tmp_path, "Org", {"box": {"maskrcnn": FIVE}})
    proc = _invoke(["results.summary", "--dir", str(tmp_path)], driver_env)  # a folder of submission folders
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("Org/box/maskrcnn: 11.00 minutes (olympic mean of 3 of 5 runs, without the fastest run and "
                        "the slowest; ruleset 3.1.0 (default: the last round with maskrcnn))")
    assert lines[1] == "    system: box: 1 node(s) x 8 NVIDIA A100-SXM4-40GB; AMD EPYC 7742; PyTorch 2.4.1"
    assert lines[2] == ("    published 82.16 min: NVIDIA DGX A100, 8x NVIDIA A100-SXM4-40GB, v0.7 (the fastest "
                        "published maskrcnn result on 8x A100 SXM); this score is 746.9% of its speed")
    assert [line.split()[0] for line in lines[3:]] == [f"result_{i}.txt" for i in range(5)]
    assert lines[3].endswith("10.00 min  counted") and lines[6].endswith("9.00 min  left out by the olympic mean")


def test_a_ruleset_that_does_not_fit_skips_the_folder(tmp_path: Path, driver_env: dict[str, str]) -> None:
    write_folder(tmp_path / "results" / "box" / "gnmt", "gnmt", [Run(5)] * 3)
    unknown = _invoke(["results.summary", "--dir", str(tmp_path / "results"), "--ruleset", "9.9.9"], driver_env)
    assert unknown.returncode == 1
    assert f"skipped: {tmp_path / 'results' / 'box' / 'gnmt'}: unknown ruleset 9.9.9 (mlperf_logging knows 0.7.0, " \
        in unknown.stderr
    assert unknown.stdout.startswith("box/gnmt: no score (unknown ruleset 9.9.9")
    later = summary.summarize(tmp_path / "results", ruleset="3.1.0")
    assert later.results[0].score.reason == "ruleset 3.1.0 has no gnmt benchmark (rulesets with it: 0.7.0)"


def test_the_ruleset_option_overrides_the_detected_one(tmp_path: Path) -> None:
    write_folder(tmp_path / "results" / "box" / "maskrcnn", "maskrcnn", FIVE, old_rules=True)
    detected = summary.summarize(tmp_path / "results").results[0]
    forced = summary.summarize(tmp_path / "results", ruleset="3.1.0").results[0]
    assert (detected.ruleset, detected.score.minutes) == ("0.7.0", 11.0)
    assert (forced.ruleset, forced.ruleset_source, forced.score.minutes) == ("3.1.0", "--ruleset", None)
    assert forced.runs[0].reason == "Required EXACTLY_ONE occurrence of 'gradient_accumulation_steps' but found 0"


def test_numbering_and_run_counts_are_reported(tmp_path: Path) -> None:
    bench = tmp_path / "results" / "box" / "maskrcnn"
    write_folder(bench, "maskrcnn", [*FIVE, Run(14)])
    (bench / "result_5.txt").rename(bench / "result_9.txt")
    [result] = summary.summarize(tmp_path / "results").results
    assert result.notes == (
        "result files numbered 0, 1, 2, 3, 4, 9 (MLPerf numbers them 0..n-1 or 1..n)",
        "6 result files; a submission has exactly 5 (package_checker refuses the folder)")
    assert result.score.minutes == pytest.approx((10 + 11 + 12 + 13) / 4)


def test_a_submission_without_a_usable_system_description_is_flagged(tmp_path: Path) -> None:
    org = write_submission(tmp_path, "Org", {"box": {"maskrcnn": FIVE}, "rig": {"maskrcnn": FIVE}})
    (org / "systems" / "box.json").unlink()
    (org / "systems" / "rig.json").write_text('{"submitter": "Org", "division": "closed"}')
    found = summary.summarize(org)
    assert [(s.path, s.reason) for s in found.skipped] == [
        (org / "systems" / "box.json", "missing; result_summarizer leaves system box out"),
        (org / "systems" / "rig.json", "no status, system_name, host_processor_model_name, number_of_nodes, "
         "host_processor_core_count, host_processors_per_node, accelerator_model_name, accelerators_per_node, "
         "framework, hw_notes, sw_notes field(s), which result_summarizer reads; "
         "result_summarizer leaves system rig out")]
    assert [r.score.minutes for r in found.results] == [11.0, 11.0]


def test_no_results_is_an_error_naming_the_folder(tmp_path: Path, driver_env: dict[str, str]) -> None:
    with pytest.raises(layout.NoResultsError, match="no such folder"):
        summary.summarize(tmp_path / "absent")
    proc = _invoke(["results.summary", "--dir", str(tmp_path)], driver_env)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"results: {tmp_path}: no result_*.txt files")
