"""The report's PNG plots of one system x benchmark (matplotlib, imported only when a report is drawn).

Figures are built with matplotlib's object API (no pyplot state, no display needed) and written
under a temporary name, then renamed.

API (each returns the path written, or None when the logs hold nothing to draw):
- `convergence(result, path)`: eval accuracy of every run against minutes since run_start, one
  panel per metric, with the quality target.
- `time_to_train(result, path)`: minutes per run, counted / left out by the olympic mean / dropped.
- `throughput(result, path)`: training samples per second per epoch of every run.
- `comparison(result, published, path)`: the score beside published results of the same benchmark on
  the same accelerator model (every submitter at the same count, the fastest at each other count; the
  result on the same model and count, or the nearest, marked), or, when the accelerators are not known,
  the fastest published result of each accelerator set.
- `projection(series, path)`: each run's projected time with its band, next to its real time.
- `scaling(group, path)`: throughput and projected time to train against node count, each with its
  ideal line and the efficiency of each point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from common.atomic import atomic_path
from common.results import compare, rulesets
from common.results.projection import SeriesProjection
from common.results.published import Published
from common.results.scaling import ScalingGroup
from common.results.summary import SCORED, BenchmarkResult, published_match

COUNTED, LEFT_OUT, DROPPED, OURS, THEIRS, MATCHED = "#1f77b4", "#9aa5b1", "#d62728", "#ff7f0e", "#7f8c99", "#2ca02c"


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


def _fastest_each(peers: Iterable[Published], key: Callable[[Published], object]) -> list[Published]:
    fastest: dict[object, Published] = {}
    for peer in peers:
        if key(peer) not in fastest or peer.minutes < fastest[key(peer)].minutes:
            fastest[key(peer)] = peer
    return list(fastest.values())


def _peers(result: BenchmarkResult, published: Sequence[Published]) -> list[Published]:
    peers = [p for p in published if p.benchmark == result.folder.benchmark]
    ours = compare.from_description(result.description)
    if ours is not None:
        model = compare.model_key(ours.model)
        same_model = [p for p in peers if p.accelerator_model and compare.model_key(p.accelerator_model) == model]
        at_count = [p for p in same_model if p.accelerator_count == ours.count]
        if at_count:
            return sorted(at_count, key=lambda p: p.minutes)
        if same_model:
            return sorted(_fastest_each(same_model, lambda p: p.accelerator_count), key=lambda p: p.minutes)
    return sorted(_fastest_each(peers, lambda p: p.accelerators), key=lambda p: p.minutes)


def comparison(result: BenchmarkResult, published: Sequence[Published], path: Path) -> Path | None:
    peers = _peers(result, published)
    ours = result.score.minutes
    if not peers and ours is None:
        return None
    match = published_match(result, published)
    bars = [(p.label, p.minutes, MATCHED if match and p == match.peer else THEIRS) for p in peers]
    if ours is not None:
        bars.append((f"{result.folder.label} (this report)", ours, OURS))
        bars.sort(key=lambda bar: bar[1])
    figure = Figure(figsize=(8.0, 0.3 * len(bars) + 1.7))
    axes = figure.add_subplot()
    positions = range(len(bars))
    axes.barh(positions, [b[1] for b in bars], color=[b[2] for b in bars])
    for position, (_, minutes, _) in zip(positions, bars, strict=True):
        axes.annotate(f" {minutes:.2f}", (minutes, position), va="center", fontsize=7)
    axes.set_yticks(positions, [b[0] for b in bars], fontsize=7)
    axes.invert_yaxis()
    minutes = [b[1] for b in bars]
    if max(minutes) >= 10 * min(minutes):
        axes.set_xscale("log")
        ticks = [v * 10.0 ** e for e in range(-2, 5) for v in (1, 2, 5) if min(minutes) / 2 <= v * 10.0 ** e
                 <= max(minutes) * 2]
        axes.set_xticks(ticks, [f"{t:g}" for t in ticks])
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("minutes to train (log scale; lower is faster)")
    else:
        axes.set_xlabel("minutes to train (lower is faster)")
    if match is not None and ours is not None:
        where = (f"on the same accelerators ({match.peer.accelerators})" if match.same
                 else f"nearest ({match.peer.accelerators}): none on {compare.from_description(result.description)}")
        title = (f"{result.folder.benchmark}: this score is {match.percent(ours):.1f}% of the speed of the published "
                 f"result in green,\n{where}")
    elif ours is not None:
        title = f"{result.folder.benchmark}: this score beside published MLPerf results"
    else:
        title = f"{result.folder.benchmark}: published MLPerf results (no score here)"
    figure.suptitle(title, fontsize=9)
    return _save(figure, path)


def projection(series: SeriesProjection, path: Path) -> Path | None:
    runs = series.projected
    if not runs:
        return None
    figure = Figure(figsize=(7.0, 0.32 * len(runs) + 1.5))
    axes = figure.add_subplot()
    for position, run in enumerate(runs):
        projected, low, high = run.minutes  # type: ignore[misc]
        axes.plot([low, high], [position, position], color=COUNTED, linewidth=6, alpha=0.35,
                  solid_capstyle="butt", label="band" if position == 0 else None)
        axes.plot([projected], [position], "o", color=COUNTED, label="projected" if position == 0 else None)
        if run.real_minutes is not None:
            colour = OURS if run.converged else DROPPED
            axes.plot([run.real_minutes], [position], "x", color=colour, markersize=8, mew=2,
                      label="real (converged)" if run.converged else "real (not converged)")
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.set_yticks(range(len(runs)), [run.path.name for run in runs], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("minutes (run_stop - run_start)")
    axes.set_title(f"{series.folder.label}: projected from the first {series.first} evaluations", fontsize=9)
    axes.grid(alpha=0.3, axis="x")
    return _save(figure, path)


def scaling(group: ScalingGroup, path: Path) -> Path | None:
    nodes = [p.nodes for p in group.points]
    figure = Figure(figsize=(9.0, 3.6))
    per = "h" if group.unit == "epochs" else "s"
    panels = (
        ([p.throughput for p in group.points], group.ideal_throughput, [p.throughput_efficiency for p in group.points],
         f"training throughput ({group.unit}/{per})", None),
        ([p.minutes for p in group.points], group.ideal_minutes, [p.time_efficiency for p in group.points],
         "projected time to train (minutes)", [(p.low, p.high) for p in group.points]),
    )
    for panel, (values, ideal, efficiency, label, bands) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, panel)
        shown = [(n, v, e, bands[i] if bands else None) for i, (n, v, e) in enumerate(zip(nodes, values, efficiency,
                                                                                           strict=True)) if v]
        if shown:
            xs, ys = [s[0] for s in shown], [s[1] for s in shown]
            axes.plot(xs, ys, "o-", color=COUNTED, label="measured" if panel == 1 else "projected")
            for n, v, e, band in shown:
                if band and band[0] is not None:
                    axes.plot([n, n], band, color=COUNTED, alpha=0.4, linewidth=4)
                axes.annotate(f"{100 * e:.0f}%" if e is not None else "", (n, v), textcoords="offset points",
                              xytext=(6, 4), fontsize=8)
        ideal_values = [ideal(n) for n in nodes]
        if all(v is not None for v in ideal_values):
            axes.plot(nodes, ideal_values, "--", color="black", linewidth=1, label="ideal (linear)")
        axes.set_xscale("log", base=2)
        axes.set_xticks(nodes, [str(n) for n in nodes])
        axes.set_ylim(bottom=0)
        axes.set_xlabel("nodes")
        axes.set_ylabel(label, fontsize=8)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(f"scaling of {group.label} (% = of ideal)", fontsize=9)
    return _save(figure, path)
