"""The results report: one self-contained HTML page with PNG plots, to open from disk.

For each system x benchmark of a summary: its score line and the published result on the same
accelerators (the percentage of its speed), system description, a table of runs (time, outcome,
whether the olympic mean counts it), convergence curves against the quality target, time to train per
run, throughput per epoch where the logs have it, each run's projection from its first evaluations
next to its real time, and the score beside published MLPerf results of the same benchmark (a table
with sources, and a plot). Series of one benchmark on several node counts of the same accelerators get
a scaling section (throughput and projected time against node count, the ideal lines, efficiency per
point). The page links only to files written next to it (and to the published results' sources); no
script, no server.

API:
- `write_report(summary, out_dir, published, projections=()) -> Path`: `out_dir/index.html` (and its PNGs);
  `projections` are the folders' `common.results.projection.SeriesProjection`s
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from common.atomic import write_text_atomic
from common.results import plots, scaling
from common.results.projection import SeriesProjection
from common.results.published import Published
from common.results.summary import SCORED, BenchmarkResult, Summary, headline, published_match

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1d2731; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-top: 1px solid #cfd6dd; padding-top: 1em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #cfd6dd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef2f5; } td.src { word-break: break-all; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.score { font-size: 1.1em; font-weight: 600; } .warn { color: #a4161a; } .muted { color: #5c6b7a; }
p.match { font-weight: 600; color: #1b6e20; } tr.match td { background: #e6f4e7; font-weight: 600; }
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
    match = published_match(result, published)
    rows = []
    for p in peers:
        ratio = f"{100 * p.minutes / ours:.1f}%" if ours is not None else "&ndash;"
        marked = match is not None and p == match.peer
        mark = ' class="match"' if marked else ""
        source = escape(p.source)
        link = re.match(r"https?://\S+", p.source)
        if link:
            source = f'<a href="{escape(link.group(0))}">{escape(link.group(0))}</a>{escape(p.source[link.end():])}'
        rows.append(f"<tr{mark}><td>{escape(p.round)}</td><td>{escape(p.submitter)}</td><td>{escape(p.system)}</td>"
                    f"<td>{escape(p.accelerators)}</td><td class=num>{p.minutes:.2f}</td><td class=num>{ratio}</td>"
                    f"<td class=src>{source}</td></tr>")
    return ("<table><tr><th>round</th><th>submitter</th><th>system</th><th>accelerators</th><th>minutes</th>"
            "<th>this score, % of its speed</th><th>source</th></tr>" + "".join(rows) + "</table>")


def _published_words(result: BenchmarkResult, published: Sequence[Published]) -> str:
    match = published_match(result, published)
    if match is None:
        return ('<p class="muted">No published result to measure this score against (no system description '
                "with the accelerators, or none published for this benchmark).</p>")
    return f'<p class="match">{escape(match.words(result.score.minutes))}</p>'


def _projection_table(series: SeriesProjection | None) -> str:
    if series is None or not series.runs:
        return ""
    rows = []
    for run in series.runs:
        if run.minutes is None:
            rows.append(f"<tr><td>{escape(run.path.name)}</td><td>{escape(run.kind)}</td>"
                        f'<td colspan=4 class="muted">{escape(run.problem or "")}</td></tr>')
            continue
        projected, low, high = run.minutes
        real = _minutes(run.real_minutes)
        if run.inside is None:
            verdict = "" if run.real_minutes is None else "not converged"
        else:
            verdict = "inside" if run.inside else '<span class="warn">outside</span>'
        rows.append(f"<tr><td>{escape(run.path.name)}</td><td>{escape(run.kind)}</td>"
                    f"<td class=num>{projected:.2f}</td><td class=num>{low:.2f}&ndash;{high:.2f}</td>"
                    f"<td class=num>{real}</td><td>{verdict}</td></tr>")
    score, how = series.score()
    target = next((r.target for r in series.runs if r.target), None)
    assumed = "" if target is None else (f"; {target.mean:.4g} {series.runs[0].progress.unit} to converge "
                                         f"({escape(target.reference.source)})")
    caption = (f"Projected from each run's first {series.first} evaluations: "
               + (f"score {score[0]:.2f} min ({score[1]:.2f}&ndash;{score[2]:.2f}), {escape(how)}" if score
                  else escape(how)) + assumed)
    return (f"<h3>Projection</h3><p>{caption}</p><table><tr><th>log</th><th>kind</th><th>projected min</th>"
            "<th>band</th><th>real min</th><th>real in band</th></tr>" + "".join(rows) + "</table>")


def _figures(result: BenchmarkResult, out_dir: Path, published: Sequence[Published],
             series: SeriesProjection | None) -> str:
    slug = _slug(result.folder.label)
    drawn = [
        (plots.convergence(result, out_dir / f"{slug}-convergence.png"), "eval accuracy against minutes of the run"),
        (plots.time_to_train(result, out_dir / f"{slug}-time-to-train.png"), "time to train per run"),
        (plots.throughput(result, out_dir / f"{slug}-throughput.png"), "training throughput per epoch"),
        (plots.comparison(result, published, out_dir / f"{slug}-comparison.png"), "comparison with published results"),
        (plots.projection(series, out_dir / f"{slug}-projection.png") if series else None,
         "projected time to train per run beside the real one"),
    ]
    return "".join(f'<img src="{escape(path.name)}" alt="{escape(result.folder.label)}: {escape(alt)}">'
                   for path, alt in drawn if path is not None)


def _section(result: BenchmarkResult, out_dir: Path, published: Sequence[Published],
             series: SeriesProjection | None) -> str:
    minutes = result.score.minutes
    score = f"{minutes:.2f} minutes" if minutes is not None else "no score"
    notes = "".join(f'<li class="warn">{escape(n)}</li>' for n in (result.provisional, *result.notes) if n)
    return (f'<h2 id="{escape(_slug(result.folder.label))}">{escape(result.folder.label)}</h2>'
            f'<p class="score">{escape(score)}</p>' + _published_words(result, published)
            + f"<p>{escape(headline(result))}</p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + _description(result) + _runs_table(result) + _projection_table(series)
            + _figures(result, out_dir, published, series)
            + "<h3>Published results</h3>" + _published_table(result, published))


def _scaling_section(found: Sequence[scaling.ScalingGroup], out_dir: Path) -> str:
    parts = []
    for group in found:
        per = "h" if group.unit == "epochs" else "s"
        rows = "".join(
            f"<tr><td class=num>{p.nodes}</td><td class=num>{_number(p.throughput)}</td>"
            f"<td class=num>{_percent(p.throughput_efficiency)}</td><td class=num>{_minutes(p.minutes)}</td>"
            f"<td class=num>{_minutes(p.low)}&ndash;{_minutes(p.high)}</td>"
            f"<td class=num>{_percent(p.time_efficiency)}</td><td>{escape(p.label)}</td></tr>" for p in group.points)
        image = plots.scaling(group, out_dir / f"scaling-{_slug(group.label)}.png")
        parts.append(f"<h3>{escape(group.label)}</h3><table><tr><th>nodes</th><th>throughput ({group.unit}/{per})</th>"
                     "<th>of ideal</th><th>projected min</th><th>band</th><th>of ideal</th><th>series</th></tr>"
                     + rows + "</table>"
                     + (f'<img src="{escape(image.name)}" alt="scaling of {escape(group.label)}">' if image else ""))
    return ('<h2 id="scaling">Scaling across nodes</h2><p class="muted">Ideal: the smallest node count\'s throughput '
            "times n/n0, its projected time times n0/n.</p>" + "".join(parts)) if parts else ""


def _number(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:,.2f}"


def _percent(value: float | None) -> str:
    return "&ndash;" if value is None else f"{100 * value:.0f}%"


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


def write_report(summary: Summary, out_dir: Path, published: Sequence[Published],
                 projections: Sequence[SeriesProjection] = ()) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    by_folder = {series.folder.path: series for series in projections}
    sections = "".join(_section(result, out_dir, published, by_folder.get(result.folder.path))
                       for result in summary.results)
    skipped = "".join(f"<li><code>{escape(str(s.path))}</code>: {escape(s.reason)}</li>" for s in summary.skipped)
    where = escape(str(summary.root)) if summary.root else "results"
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>MLPerf results: {where}</title>'
            f"<style>{_STYLE}</style></head><body><h1>MLPerf results: <code>{where}</code></h1>"
            f'<p class="muted">Scored as MLCommons scores them (compliance checker per log, olympic mean, '
            f"required runs); written {datetime.now():%Y-%m-%d %H:%M}.</p>"
            + _overview(summary)
            + (f'<h2>Skipped</h2><ul class="warn">{skipped}</ul>' if skipped else "")
            + _scaling_section(scaling.groups(projections), out_dir)
            + sections + "</body></html>\n")
    index = out_dir / "index.html"
    write_text_atomic(index, page)
    return index
