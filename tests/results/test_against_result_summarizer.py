"""`results.summary` scores what `mlperf_logging.result_summarizer` scores, on the same generated folders.

Each folder holds systems that exercise one rule: every run converged, numbering from 1 with a run
that missed the target, a run that fails compliance, two dropped runs, too few runs, a review's
scaling.json, a last line cut short, a run without run_stop, a log of another benchmark. The
summarizer runs on the same folders in the same test; the expected minutes are also written out,
so the two cannot agree on a wrong number unnoticed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import layout, summary, systems
from common.results.logs import read_log
from tests.results.generated import Run, write_folder, write_submission

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NC = {"converged": False}
# system -> (runs, first index, expected score in minutes, or None)
MASKRCNN_3_1 = {
    "all-converged": ([Run(10), Run(12), Run(11), Run(9), Run(13)], 0, 11.0),
    "one-based-not-converged": ([Run(10), Run(12), Run(11, **NC), Run(9), Run(13)], 1, (10 + 12 + 13) / 3),
    "one-not-compliant": ([Run(8), Run(9), Run(10, drop_key="max_image_size"), Run(11), Run(12)], 0, 32 / 3),
    "two-dropped": ([Run(8), Run(9, **NC), Run(10, drop_key="max_image_size"), Run(11), Run(12)], 0, None),
    "three-runs": ([Run(7), Run(9), Run(8)], 0, 8.0),
    "two-runs": ([Run(7), Run(9)], 0, None),
    "cut-last-line": ([Run(10), Run(11, cut_last_line=True), Run(12), Run(13), Run(14)], 0, 13.0),
    "no-run-stop": ([Run(10), Run(11), Run(12, drop_key="run_stop"), Run(13), Run(14)], 0, 38 / 3),
    "other-benchmark": ([Run(10), Run(11), Run(12), Run(13), Run(14, benchmark="ssd")], 0, 12.0),
}


def _summarizer(folder: Path, ruleset: str, workdir: Path) -> dict[tuple[str, str], float | None]:
    """{(system, benchmark): minutes} from result_summarizer's CSV (it writes summary.json into its cwd)."""
    out = workdir / f"summary-{ruleset}.csv"
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.result_summarizer", str(folder), "training", ruleset,
                           "--csv", str(out)], cwd=workdir, capture_output=True, text=True, timeout=600, check=False)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    with out.open(newline="") as rows:
        return {(row["system"], bench): float(row[bench]) if row[bench] else None
                for row in csv.DictReader(rows) for bench in ("maskrcnn", "gnmt") if bench in row}


def _ours(found: summary.Summary) -> dict[tuple[str, str], float | None]:
    return {(r.folder.system, r.folder.benchmark): r.score.minutes for r in found.results}


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def _assert_same(ours: dict, theirs: dict, expected: dict) -> None:
    for key, want in expected.items():
        assert ours[key] == (pytest.approx(want, rel=1e-12) if want is not None else None), key
        assert theirs[key] == (pytest.approx(ours[key], rel=1e-12) if ours[key] is not None else None), key


def test_submission_layout_3_1_0(tmp_path: Path) -> None:
    org = tmp_path / "Org"
    for system, (runs, first, _) in MASKRCNN_3_1.items():
        write_folder(org / "results" / system / "maskrcnn", "maskrcnn", runs, first_index=first)
    write_submission(tmp_path, "Org", {system: {} for system in MASKRCNN_3_1})  # the systems JSONs
    (org / "results" / "all-converged" / "maskrcnn" / "scaling.json").write_text('{"scaling_factor": 1.25}')
    before = _snapshot(org)

    found = summary.summarize(org)
    assert _snapshot(org) == before  # the summary only reads

    theirs = _summarizer(org, "3.1.0", tmp_path)
    expected = {(s, "maskrcnn"): want for s, (_, _, want) in MASKRCNN_3_1.items()}
    expected["all-converged", "maskrcnn"] = 11.0 * 1.25
    _assert_same(_ours(found), theirs, expected)
    by_system = {r.folder.system: r for r in found.results}
    assert {r.ruleset for r in found.results} == {"3.1.0"}
    assert by_system["three-runs"].provisional == "provisional: 3 of the 5 runs MLPerf requires"
    assert by_system["all-converged"].provisional is None
    assert "runs dropped" in by_system["two-dropped"].score.reason
    skipped = {s.path.relative_to(org).as_posix(): s.reason for s in found.skipped}
    assert set(skipped) == {"results/cut-last-line/maskrcnn/result_1.txt", "results/no-run-stop/maskrcnn/result_2.txt",
                            "results/other-benchmark/maskrcnn/result_4.txt"}
    assert "cut short" in skipped["results/cut-last-line/maskrcnn/result_1.txt"]
    assert "no run_stop line" in skipped["results/no-run-stop/maskrcnn/result_2.txt"]
    assert skipped["results/other-benchmark/maskrcnn/result_4.txt"] == (
        "submission_benchmark 'ssd': a log of another benchmark in the maskrcnn folder")


def test_rounds_0_7_0_detected_from_the_logs(tmp_path: Path) -> None:
    gnmt = [Run(5), Run(6), Run(5.5, **NC), Run(4), Run(7), Run(4.5), Run(6.5), Run(5.2), Run(4.8), Run(6.1)]
    maskrcnn = [Run(80), Run(82), Run(85), Run(79), Run(90)]
    org = write_submission(tmp_path, "Old", {"dgx": {"gnmt": gnmt}})
    write_folder(org / "results" / "dgx" / "maskrcnn", "maskrcnn", maskrcnn, old_rules=True)

    found = summary.summarize(org)
    theirs = _summarizer(org, "0.7.0", tmp_path)
    converged = sorted(r.minutes for r in gnmt if r.converged)
    _assert_same(_ours(found), theirs, {("dgx", "gnmt"): sum(converged[1:]) / 8, ("dgx", "maskrcnn"): 82.0 + 1 / 3})
    sources = {r.folder.benchmark: (r.ruleset, r.ruleset_source) for r in found.results}
    assert sources["maskrcnn"] == ("0.7.0", "detected: the newest round whose required keys the logs have "
                                    "(3.1.0 also requires gradient_accumulation_steps)")
    assert sources["gnmt"] == ("0.7.0", "the only round with gnmt")


def test_project_layout_with_the_description_written_here(tmp_path: Path) -> None:
    results = tmp_path / "results"
    paths = write_folder(results / "box" / "maskrcnn", "maskrcnn",
                         [Run(21), Run(19.5), Run(20, **NC), Run(22), Run(18)], first_index=1)
    written = systems.describe_local_run(layout.submission_root(results), "box", read_log(paths[0]))
    assert written.path == tmp_path / "systems" / "box.json"

    found = summary.summarize(results)
    theirs = _summarizer(tmp_path, "3.1.0", tmp_path)
    _assert_same(_ours(found), theirs, {("box", "maskrcnn"): (19.5 + 21 + 22) / 3})
    [result] = found.results
    assert result.description is not None and result.description["system_name"] == "box"
    assert found.skipped == ()
    assert json.loads(written.path.read_text())["submitter"] == "Backend.AI"  # from the log's submission_org
