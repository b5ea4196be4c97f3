"""Scaling across node counts: one benchmark's series on 1, 2, 4, ... nodes of the same accelerators.

A series (one system x benchmark folder) is a point at its node count; series of the same benchmark,
submitter, accelerator model and accelerators per node form a group (systems/<system>.json says them;
without one, a system name such as `bai-2x8xH100`, nodes x GPUs x model, as cluster runs name their
systems). A group with two node counts or more shows how the cluster scales: per point the training
throughput (from the projection's steady pace: the median over the series' runs) and the projected time
to train (the series' projected score), each against the ideal line drawn from the smallest node count
(throughput x n/n0, time x n0/n), with the efficiency of each point (measured / ideal). Throughput is in
the unit the reference counts: epochs per hour, or samples (steps) per second.

API:
- `groups(series) -> list[ScalingGroup]` (from `common.results.projection.SeriesProjection`s)
- `ScalingGroup`: benchmark, label, unit, points (`ScalingPoint`: nodes, throughput, minutes, low, high,
  throughput_efficiency, time_efficiency)
- `render_text(groups) -> str`
- `scaling_lines(results_root, benchmark) -> str`: what a run task prints after a series on several node
  counts (`run --on-cluster --nodes 1,2,4`): the groups of that benchmark under results_root
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.results import compare, layout, projection

_NAMED = re.compile(r"(?:^|[-_])(\d+)x(\d+)x([A-Za-z0-9.]+)$")


@dataclass(frozen=True)
class ScalingPoint:
    label: str
    nodes: int
    throughput: float | None
    minutes: float | None
    low: float | None
    high: float | None
    throughput_efficiency: float | None = None
    time_efficiency: float | None = None


@dataclass(frozen=True)
class ScalingGroup:
    benchmark: str
    label: str
    unit: str
    points: tuple[ScalingPoint, ...]

    @property
    def base(self) -> ScalingPoint:
        return self.points[0]

    def ideal_throughput(self, nodes: int) -> float | None:
        base = self.base
        return None if base.throughput is None else base.throughput * nodes / base.nodes

    def ideal_minutes(self, nodes: int) -> float | None:
        base = self.base
        return None if base.minutes is None else base.minutes * base.nodes / nodes


def _shape(series: projection.SeriesProjection) -> tuple[int, int, str] | None:
    """(nodes, accelerators per node, model) of a series' system."""
    described = series.description or {}
    try:
        nodes, per_node = int(str(described["number_of_nodes"])), int(str(described["accelerators_per_node"]))
        model = str(described["accelerator_model_name"])
        return (nodes, per_node, model) if nodes > 0 and model else None
    except (KeyError, ValueError):
        named = _NAMED.search(series.folder.system)
        return (int(named.group(1)), int(named.group(2)), named.group(3)) if named else None


def _rate(series: projection.SeriesProjection) -> tuple[float | None, str]:
    paces = [run.pace for run in series.projected if run.pace and not run.pace.warm_up_included]
    units = {run.progress.unit for run in series.projected}
    unit = units.pop() if len(units) == 1 else "epochs"
    if not paces:
        return None, unit
    seconds = statistics.median(p.seconds_per_unit for p in paces)
    return (3600 / seconds if unit == "epochs" else 1 / seconds), unit


def _group_points(benchmark: str, label: str, members: list[tuple[int, projection.SeriesProjection]]) -> ScalingGroup:
    by_nodes: dict[int, projection.SeriesProjection] = {}
    for nodes, series in members:
        kept = by_nodes.get(nodes)
        if kept is None or len(series.projected) > len(kept.projected):
            by_nodes[nodes] = series
    raw = []
    unit = "epochs"
    for nodes in sorted(by_nodes):
        series = by_nodes[nodes]
        rate, unit = _rate(series)
        score, _ = series.score()
        raw.append(ScalingPoint(series.folder.label, nodes, rate, *(score or (None, None, None))))
    group = ScalingGroup(benchmark, label, unit, tuple(raw))
    points = []
    for point in raw:
        ideal_rate, ideal_minutes = group.ideal_throughput(point.nodes), group.ideal_minutes(point.nodes)
        points.append(ScalingPoint(
            point.label, point.nodes, point.throughput, point.minutes, point.low, point.high,
            None if point.throughput is None or not ideal_rate else point.throughput / ideal_rate,
            None if point.minutes is None or ideal_minutes is None else ideal_minutes / point.minutes))
    return ScalingGroup(benchmark, label, unit, tuple(points))


def groups(all_series: Sequence[projection.SeriesProjection]) -> list[ScalingGroup]:
    members: dict[tuple[str, str, tuple[str, str], int], list[tuple[int, projection.SeriesProjection]]] = {}
    names: dict[tuple[str, str, tuple[str, str], int], str] = {}
    for series in all_series:
        shape = _shape(series)
        if shape is None:
            continue
        nodes, per_node, model = shape
        key = (series.folder.benchmark, series.folder.submitter or "", compare.model_key(model), per_node)
        members.setdefault(key, []).append((nodes, series))
        who = f"{series.folder.submitter}: " if series.folder.submitter else ""
        names[key] = f"{series.folder.benchmark}, {who}{per_node}x {model} per node"
    return [_group_points(key[0], names[key], found) for key, found in sorted(members.items())
            if len({nodes for nodes, _ in found}) >= 2]


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def render_text(found: Sequence[ScalingGroup]) -> str:
    lines = []
    for group in found:
        per = "h" if group.unit == "epochs" else "s"
        lines.append(f"scaling of {group.label} (ideal: from {group.base.nodes} node(s)):")
        for point in group.points:
            lines.append(f"    {point.nodes:>4} node(s)  {_number(point.throughput)} {group.unit}/{per} "
                         f"({_percent(point.throughput_efficiency)} of ideal)  projected "
                         f"{_number(point.minutes)} min ({_percent(point.time_efficiency)} of ideal)  {point.label}")
    return "\n".join(lines)


def to_data(found: Sequence[ScalingGroup]) -> list[dict[str, Any]]:
    return [{"benchmark": g.benchmark, "label": g.label, "unit": g.unit,
             "points": [vars(p) for p in g.points]} for g in found]


def scaling_lines(results_root: Path, benchmark: str) -> str:
    """The scaling of `benchmark` under `results_root` (empty when it ran on one node count only)."""
    try:
        found = projection.project(results_root)
    except layout.NoResultsError:
        return ""
    return render_text([g for g in groups(found) if g.benchmark == benchmark])
