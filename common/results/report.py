"""The results report: one self-contained HTML page with PNG plots, to open from disk.

For each system x benchmark of a summary: its score line, system description, a table of runs
(time, outcome, whether the olympic mean counts it), convergence curves against the quality
target, time to train per run, throughput per epoch where the logs have it, and the score beside
published MLPerf results of the same benchmark (a table with sources, and a plot). The page links
only to files written next to it (and to the published results' sources); no script, no server.

API:
- `write_report(summary, out_dir, published) -> Path`: `out_dir/index.html` (and its PNGs)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from common.atomic import write_text_atomic
from common.results import plots
from common.results.published import Published
from common.results.summary import SCORED, BenchmarkResult, Summary, headline

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1d2731; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-top: 1px solid #cfd6dd; padding-top: 1em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #cfd6dd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef2f5; } td.src { word-break: break-all; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.score { font-size: 1.1em; font-weight: 600; } .warn { color: #a4161a; } .muted { color: #5c6b7a; }
img { max-width: 100%; display: block; margin: 0.6em 0; border: 1px solid #e3e8ec; }
code { background: #f3f5f7; padding: 0 0.2em; }
"""


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")


def _minutes(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.2f}"


def _runs_table(result: BenchmarkResult) -> str:
    rows = []
    for index, run in enumerate(result.runs):
        if run.outcome != SCORED:
            state = f'<span class="warn">dropped: {escape(run.outcome)}</span> {escape(run.reason)}'
        elif index in result.score.counted:
            state = "counted in the mean"
        else:
            state = '<span class="muted">left out by the olympic mean (fastest or slowest)</span>'
        rows.append(f"<tr><td>{escape(run.path.name)}</td><td class=num>{_minutes(run.minutes)}</td>"
                    f"<td>{escape(run.log.status or '?')}</td><td>{state}</td></tr>")
    return ("<table><tr><th>result file</th><th>minutes</th><th>run_stop status</th><th>in the score</th></tr>"
            + "".join(rows) + "</table>")


def _description(result: BenchmarkResult) -> str:
    described = result.description
    if not described:
        return f'<p class="muted">No system description ({escape(str(result.folder.description_path))}).</p>'
    keys = ("system_name", "number_of_nodes", "accelerators_per_node", "accelerator_model_name",
            "accelerator_memory_capacity", "host_processor_model_name", "host_processors_per_node",
            "host_memory_capacity", "framework", "operating_system")
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(described.get(k, '')))}</td></tr>" for k in keys)
    return f"<table>{cells}</table>"


def _published_table(result: BenchmarkResult, published: Sequence[Published]) -> str:
    peers = sorted((p for p in published if p.benchmark == result.folder.benchmark), key=lambda p: p.minutes)
    if not peers:
        return '<p class="muted">No published results of this benchmark to compare with.</p>'
    ours = result.score.minutes
    rows = []
    for p in peers:
        ratio = f"{ours / p.minutes:.2f}x" if ours is not None else "&ndash;"
        source = escape(p.source)
        link = re.match(r"https?://\S+", p.source)
        if link:
            source = f'<a href="{escape(link.group(0))}">{escape(link.group(0))}</a>{escape(p.source[link.end():])}'
        rows.append(f"<tr><td>{escape(p.round)}</td><td>{escape(p.submitter)}</td><td>{escape(p.system)}</td>"
                    f"<td>{escape(p.accelerators)}</td><td class=num>{p.minutes:.2f}</td><td class=num>{ratio}</td>"
                    f"<td class=src>{source}</td></tr>")
    return ("<table><tr><th>round</th><th>submitter</th><th>system</th><th>accelerators</th><th>minutes</th>"
            "<th>this score / theirs</th><th>source</th></tr>" + "".join(rows) + "</table>")


def _figures(result: BenchmarkResult, out_dir: Path, published: Sequence[Published]) -> str:
    slug = _slug(result.folder.label)
    drawn = [
        (plots.convergence(result, out_dir / f"{slug}-convergence.png"), "eval accuracy against minutes of the run"),
        (plots.time_to_train(result, out_dir / f"{slug}-time-to-train.png"), "time to train per run"),
        (plots.throughput(result, out_dir / f"{slug}-throughput.png"), "training throughput per epoch"),
        (plots.comparison(result, published, out_dir / f"{slug}-comparison.png"), "comparison with published results"),
    ]
    return "".join(f'<img src="{escape(path.name)}" alt="{escape(result.folder.label)}: {escape(alt)}">'
                   for path, alt in drawn if path is not None)


def _section(result: BenchmarkResult, out_dir: Path, published: Sequence[Published]) -> str:
    minutes = result.score.minutes
    score = f"{minutes:.2f} minutes" if minutes is not None else "no score"
    notes = "".join(f'<li class="warn">{escape(n)}</li>' for n in (result.provisional, *result.notes) if n)
    return (f'<h2 id="{escape(_slug(result.folder.label))}">{escape(result.folder.label)}</h2>'
            f'<p class="score">{escape(score)}</p><p>{escape(headline(result))}</p>'
            + (f"<ul>{notes}</ul>" if notes else "")
            + _description(result) + _runs_table(result) + _figures(result, out_dir, published)
            + "<h3>Published results</h3>" + _published_table(result, published))


def _overview(summary: Summary) -> str:
    rows = []
    for result in summary.results:
        runs = f"{len(result.runs)}" + (f" of {result.required_runs}" if result.required_runs else "")
        described = result.description
        accelerators = escape(f"{described.get('number_of_nodes')} x {described.get('accelerators_per_node')} "
                              f"{described.get('accelerator_model_name')}") if described else "&ndash;"
        rows.append(f'<tr><td><a href="#{escape(_slug(result.folder.label))}">{escape(result.folder.label)}</a></td>'
                    f"<td class=num>{_minutes(result.score.minutes)}</td><td>{escape(result.ruleset or '-')}</td>"
                    f"<td class=num>{runs}</td><td>{accelerators}</td>"
                    f"<td>{escape(result.provisional or '')}</td></tr>")
    return ("<table><tr><th>system / benchmark</th><th>minutes</th><th>ruleset</th><th>runs</th>"
            "<th>nodes x accelerators</th><th></th></tr>" + "".join(rows) + "</table>")


def write_report(summary: Summary, out_dir: Path, published: Sequence[Published]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = "".join(_section(result, out_dir, published) for result in summary.results)
    skipped = "".join(f"<li><code>{escape(str(s.path))}</code>: {escape(s.reason)}</li>" for s in summary.skipped)
    where = escape(str(summary.root)) if summary.root else "results"
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>MLPerf results: {where}</title>'
            f"<style>{_STYLE}</style></head><body><h1>MLPerf results: <code>{where}</code></h1>"
            f'<p class="muted">Scored as MLCommons scores them (compliance checker per log, olympic mean, '
            f"required runs); written {datetime.now():%Y-%m-%d %H:%M}.</p>"
            + _overview(summary)
            + (f'<h2>Skipped</h2><ul class="warn">{skipped}</ul>' if skipped else "")
            + sections + "</body></html>\n")
    index = out_dir / "index.html"
    write_text_atomic(index, page)
    return index
