"""The report's PNG plots of one system x benchmark (matplotlib, imported only when a report is drawn).

Figures are built with matplotlib's object API (no pyplot state, no display needed) and written
under a temporary name, then renamed.

API (each returns the path written, or None when the logs hold nothing to draw):
- `convergence(result, path)`: eval accuracy of every run against minutes since run_start, one
  panel per metric, with the quality target.
- `time_to_train(result, path)`: minutes per run, counted / left out by the olympic mean / dropped.
- `throughput(result, path)`: training samples per second per epoch of every run.
- `comparison(result, published, path)`: the score beside published results of the same benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from common.atomic import atomic_path
from common.results import rulesets
from common.results.published import Published
from common.results.summary import SCORED, BenchmarkResult

COUNTED, LEFT_OUT, DROPPED, OURS, THEIRS = "#1f77b4", "#9aa5b1", "#d62728", "#ff7f0e", "#7f8c99"


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return path


def _run_label(run_index: int, result: BenchmarkResult) -> str:
    run = result.runs[run_index]
    return run.path.name + ("" if run.outcome == SCORED else f" ({run.outcome})")


def convergence(result: BenchmarkResult, path: Path) -> Path | None:
    benchmark = result.folder.benchmark
    curves = [[(p.minutes, rulesets.metrics(benchmark, p.value)) for p in run.log.evals] for run in result.runs]
    targets = rulesets.QUALITY_TARGETS.get(benchmark, {})
    names = list(targets) or sorted({name for curve in curves for _, values in curve for name in values})
    if not names or not any(curves):
        return None
    figure = Figure(figsize=(5.2 * len(names), 3.8))
    for panel, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), panel)
        for index, curve in enumerate(curves):
            points = [(minutes, values[name]) for minutes, values in curve if name in values]
            if points:
                dashed = result.runs[index].outcome != SCORED
                axes.plot(*zip(*points, strict=True), marker="o", markersize=3, linestyle="--" if dashed else "-",
                          label=_run_label(index, result))
        if name in targets:
            axes.axhline(targets[name], color="black", linewidth=1, linestyle=":",
                         label=f"target {targets[name]:g}")
        axes.set_xlabel("minutes since run_start")
        axes.set_ylabel(name)
        axes.set_title(f"{result.folder.label}: {name}", fontsize=9)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    return _save(figure, path)


def time_to_train(result: BenchmarkResult, path: Path) -> Path | None:
    timed = [(i, run) for i, run in enumerate(result.runs) if run.minutes is not None]
    if not timed:
        return None
    figure = Figure(figsize=(max(5.0, 0.9 * len(timed) + 2), 3.8))
    axes = figure.add_subplot()
    for position, (index, run) in enumerate(timed):
        if run.outcome != SCORED:
            color, hatch, kind = DROPPED, "//", f"dropped ({run.outcome})"
        elif index in result.score.counted:
            color, hatch, kind = COUNTED, None, "counted"
        else:
            color, hatch, kind = LEFT_OUT, None, "left out (fastest / slowest)"
        axes.bar(position, run.minutes, color=color, hatch=hatch, edgecolor="black", linewidth=0.5, label=kind)
        axes.annotate(f"{run.minutes:.2f}", (position, run.minutes), ha="center", va="bottom", fontsize=7)
    if result.score.minutes is not None:
        axes.axhline(result.score.minutes, color="black", linestyle="--", linewidth=1,
                     label=f"score {result.score.minutes:.2f} min")
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.set_xticks(range(len(timed)), [run.path.name for _, run in timed], rotation=30, ha="right", fontsize=7)
    axes.set_ylabel("minutes (run_stop - run_start)")
    axes.set_title(f"{result.folder.label}: time to train per run", fontsize=9)
    return _save(figure, path)


def throughput(result: BenchmarkResult, path: Path) -> Path | None:
    series = [(i, run.log.throughput) for i, run in enumerate(result.runs) if run.log.throughput]
    if not series:
        return None
    figure = Figure(figsize=(5.6, 3.8))
    axes = figure.add_subplot()
    for index, points in series:
        axes.plot([p.epoch for p in points], [p.samples_per_second for p in points], marker="o", markersize=3,
                  label=_run_label(index, result))
    axes.set_xlabel("epoch")
    axes.set_ylabel("training samples / s")
    axes.set_title(f"{result.folder.label}: training throughput per epoch", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return _save(figure, path)


def comparison(result: BenchmarkResult, published: Sequence[Published], path: Path) -> Path | None:
    peers = sorted((p for p in published if p.benchmark == result.folder.benchmark), key=lambda p: p.minutes)
    ours = result.score.minutes
    if not peers and ours is None:
        return None
    bars = [(p.label, p.minutes, THEIRS) for p in peers]
    if ours is not None:
        bars.append((f"{result.folder.label} (this report)", ours, OURS))
        bars.sort(key=lambda bar: bar[1])
    figure = Figure(figsize=(8.0, 0.38 * len(bars) + 1.4))
    axes = figure.add_subplot()
    positions = range(len(bars))
    axes.barh(positions, [b[1] for b in bars], color=[b[2] for b in bars])
    for position, (_, minutes, _) in zip(positions, bars, strict=True):
        axes.annotate(f" {minutes:.2f}", (minutes, position), va="center", fontsize=7)
    axes.set_yticks(positions, [b[0] for b in bars], fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("minutes to train (log scale; lower is faster)")
    title = f"{result.folder.benchmark}: this score beside published MLPerf results"
    axes.set_title(title if ours is not None else f"{title} (no score here)", fontsize=9)
    return _save(figure, path)
