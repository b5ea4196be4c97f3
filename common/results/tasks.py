"""Invoke collection `results`: MLPerf scores of result folders, projections from short runs, a report, and a
submission package.

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


def _published(extra) -> list:
    from common.results import published as published_results  # noqa: PLC0415

    try:
        return published_results.load(Path(p) for p in extra or ())
    except published_results.PublishedDataError as error:
        raise Exit(f"results: {error}", code=1) from error


_PUBLISHED_HELP = ("a YAML file of more published results to compare with (repeatable; the shape of "
                   "common/results/published.yaml)")


@task(iterable=["published"], help={
    "dir": _DIR_HELP, "json": "print the summary as JSON data",
    "ruleset": "score every folder with this ruleset (default: detected from the logs, else the benchmark's last "
               "round)",
    "published": _PUBLISHED_HELP})
def summary(c, dir_="results", json_=False, ruleset=None, published=None):
    """Score every system x benchmark under DIR as MLCommons does, beside the published result on the same
    accelerators; exit 1 when something was skipped."""
    _require("summary", ("mlperf_logging",))
    from common.results.summary import render_text, to_data  # noqa: PLC0415

    peers = _published(published)
    scored = _summarize(dir_, ruleset)
    print(json.dumps(to_data(scored, peers), indent=2) if json_ else render_text(scored, peers), flush=True)
    _report_skipped(scored.skipped)


@task(iterable=["published"], help={
    "dir": _DIR_HELP, "out": "folder for index.html and its PNGs (default: report/)",
    "ruleset": "as for results.summary",
    "published": _PUBLISHED_HELP})
def report(c, dir_="results", out="report", ruleset=None, published=None):
    """Draw the HTML report of DIR (convergence, time to train, throughput, projections, published results,
    scaling across node counts)."""
    _require("report", ("mlperf_logging", "matplotlib"))
    from common.results.projection import project  # noqa: PLC0415
    from common.results.report import write_report  # noqa: PLC0415

    peers = _published(published)
    scored = _summarize(dir_, ruleset)
    print(f"report: {write_report(scored, Path(out), peers, project(Path(dir_)))}", flush=True)
    _report_skipped(scored.skipped)


@task(iterable=["published"], help={
    "dir": _DIR_HELP + "; also reads probe_*.txt and result_*.txt.partial (runs not finished)",
    "json": "print the projections as JSON data",
    "first": "a finished run is projected from its first N evaluations, as a probe would see it (default 3)",
    "ruleset": "take the reference convergence points of this round (default: the newest mlperf-logging has for "
               "the benchmark)",
    "published": _PUBLISHED_HELP})
def project(c, dir_="results", json_=False, first=3, ruleset=None, published=None):
    """Project every run's time to train under DIR (finished, cut anywhere or a probe) from its first
    evaluations and the reference convergence at its batch, with a band and the series' projected score."""
    _require("project", ("mlperf_logging",))
    from common.results import layout, projection  # noqa: PLC0415

    if int(first) < 1:
        raise Exit("results.project: --first must be at least 1", code=2)
    peers = _published(published)
    try:
        projected = projection.project(Path(dir_), first=int(first), ruleset=ruleset)
    except layout.NoResultsError as error:
        raise Exit(f"results: {error}", code=1) from error
    print(json.dumps(projection.to_data(projected, peers), indent=2) if json_
          else projection.render_text(projected, peers), flush=True)


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


ns = Collection(summary, report, project, package)
