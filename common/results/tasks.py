"""Invoke collection `results`: MLPerf scores of result folders, a report with plots, a submission package.

DIR is `--dir` (Invoke has no optional positional arguments): the project's `results/`
(default), a submitter's folder of an MLCommons submission, or a folder of those. Both tasks exit
1 when anything under DIR was skipped (named on stderr with its reason), 0 otherwise; the rest of
the summary is printed either way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from invoke import Collection, Exit, task

from common import extras

_DIR_HELP = "results/ (the project's layout), a submission folder, or a folder of submission folders"


def _require(task_name: str, modules: tuple[str, ...]) -> None:
    try:
        extras.require("results", f"invoke results.{task_name}", modules)
    except extras.MissingExtraError as exc:
        raise Exit(str(exc), code=1) from None


def _summarize(folder: str, ruleset: str | None):
    from common.results import layout, summary  # noqa: PLC0415 - keeps `invoke --list` light

    try:
        return summary.summarize(Path(folder), ruleset=ruleset)
    except layout.NoResultsError as error:
        raise Exit(f"results: {error}", code=1) from error


def _report_skipped(skipped) -> None:
    for item in skipped:
        print(f"skipped: {item.path}: {item.reason}", file=sys.stderr)
    if skipped:
        raise Exit(code=1)


@task(help={"dir": _DIR_HELP, "json": "print the summary as JSON data",
            "ruleset": "score every folder with this ruleset (default: detected from the logs, else the "
                       "benchmark's last round)"})
def summary(c, dir_="results", json_=False, ruleset=None):
    """Score every system x benchmark under DIR as MLCommons does; exit 1 when something was skipped."""
    _require("summary", ("mlperf_logging",))
    from common.results.summary import render_text, to_data  # noqa: PLC0415

    scored = _summarize(dir_, ruleset)
    print(json.dumps(to_data(scored), indent=2) if json_ else render_text(scored), flush=True)
    _report_skipped(scored.skipped)


@task(iterable=["published"], help={
    "dir": _DIR_HELP, "out": "folder for index.html and its PNGs (default: report/)",
    "ruleset": "as for results.summary",
    "published": "a YAML file of more published results to compare with (repeatable; the shape of "
                 "common/results/published.yaml)"})
def report(c, dir_="results", out="report", ruleset=None, published=None):
    """Draw the HTML report of DIR (convergence, time to train, throughput, published results)."""
    _require("report", ("mlperf_logging", "matplotlib"))
    from common.results import published as published_results  # noqa: PLC0415
    from common.results.report import write_report  # noqa: PLC0415

    try:
        peers = published_results.load(Path(p) for p in published or ())
    except published_results.PublishedDataError as error:
        raise Exit(f"results: {error}", code=1) from error
    scored = _summarize(dir_, ruleset)
    print(f"report: {write_report(scored, Path(out), peers)}", flush=True)
    _report_skipped(scored.skipped)


@task(iterable=["benchmark", "system"], help={
    "dir": "the project's results/ (run_and_time's layout; systems/ beside it)",
    "out": "folder the package goes into, as <out>/<org>/ (default: submission/)",
    "org": "the submitter's folder name (default: the runs' submission_org)",
    "benchmark": "a benchmark to package (repeatable; default: every one found; one round per package)",
    "system": "a system to package (repeatable; default: every one found)",
    "ruleset": "the round (default: the benchmark's last: maskrcnn 3.1.0, gnmt 0.7.0)",
    "implementation": "the implementation's folder name under benchmarks/<benchmark>/implementations/"})
def package(c, dir_="results", out="submission", org=None, benchmark=None, system=None, ruleset=None,
            implementation="pytorch"):
    """Write an MLCommons submission package and print what package_checker says of it; exit 1 on its errors."""
    _require("package", ("mlperf_logging",))
    from common.results.package import PackageError  # noqa: PLC0415
    from common.results.package import package as build  # noqa: PLC0415

    try:
        made = build(Path(dir_), Path(out), org=org, benchmarks=benchmark or None, system_names=system or None,
                     ruleset=ruleset, implementation=implementation)
    except PackageError as error:
        raise Exit(f"results.package: {error}", code=1) from error
    print(made.report(), flush=True)
    if not made.ok:
        raise Exit(code=1)


ns = Collection(summary, report, package)
