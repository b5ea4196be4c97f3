"""The time to train a run is heading for, from its first evaluations: minutes with a band.

A run's pace is read from its evaluations (`common.results.progress`): the first interval holds the
initialisation after run_start and the first epoch's warm-up, the second still the first evaluation's
own, so the time per epoch (or sample) is the slope from the second evaluation's end of training to the
last one's (from the first with two evaluations; from run_start with one, warm-up included, which
overestimates); what the slope does not explain up to there is the start-up overhead; the evaluation
overhead is the median time from an evaluation's end of training to its result. The epochs (samples)
to converge come from the reference (`common.results.convergence`) at the run's global batch, else
from the folder's own converged runs at that batch. The band spans the reference mean +/- two standard
deviations (at least half an evaluation interval, since a run converges only where it evaluates),
widened to the run's evaluation points, and its minutes by PACE_TOLERANCE (or the spread of the steady
intervals, when larger) for the pace of the rest of the run:

    minutes = (trained_s(last) + (epochs - at(last)) * seconds_per_epoch + eval_s) / 60

A finished run is projected from its first `first` evaluations (what a probe would have seen) and
shown next to its real time; a run without run_stop (a probe, a run still going, a log cut anywhere)
from all its evaluations. A series' projected score is the olympic mean of its runs' projections
(`common.results.scoring`), low and high likewise.

API:
- `project_folder(folder, *, first=FIRST_EVALUATIONS, ruleset=None) -> SeriesProjection`;
  `project_files(folder, paths, ...)`: some of its logs only
- `project(root, *, first=..., ruleset=None) -> list[SeriesProjection]` (raises `layout.NoResultsError`)
- `render_text(series, published=()) -> str`, `to_data(series, published=()) -> dict` (what
  `results.project --json` prints); with published results, the projected score beside the published
  result on the same accelerators (`common.results.compare`)
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.results import compare, convergence, layout, scoring, systems
from common.results.progress import Evaluation, RunProgress, read_progress
from common.results.published import Published

FIRST_EVALUATIONS = 3
BAND_SIGMAS = 2.0
# How far the pace of the rest of a run may stray from the pace measured (at least): the band's minutes are
# widened by it, or by the spread of the steady intervals measured when that is larger.
PACE_TOLERANCE = 0.03
# The logs a projection reads: results, results still being written or cut, and probes.
PROBE_GLOB = "probe_*.txt"
LOG_GLOBS = (layout.RESULT_GLOB, f"{layout.RESULT_GLOB}.partial", PROBE_GLOB, f"{PROBE_GLOB}.partial")
PROBE, FINISHED, UNFINISHED = "probe", "finished", "unfinished"


@dataclass(frozen=True)
class Pace:
    seconds_per_unit: float
    startup_s: float
    eval_s: float
    evaluations: int
    anchor: Evaluation
    grid: float
    first_at: float
    tolerance: float

    @property
    def warm_up_included(self) -> bool:
        return self.evaluations < 2

    def minutes(self, at: float) -> float:
        return (self.anchor.trained_s + (at - self.anchor.at) * self.seconds_per_unit + self.eval_s) / 60

    def below(self, at: float) -> float:
        """The last evaluation point at or below `at` (a run converges only where it evaluates)."""
        return self.first_at + math.floor((at - self.first_at) / self.grid + 1e-9) * self.grid

    def above(self, at: float) -> float:
        return self.first_at + math.ceil((at - self.first_at) / self.grid - 1e-9) * self.grid


@dataclass(frozen=True)
class Target:
    mean: float
    low: float
    high: float
    reference: convergence.Reference


@dataclass(frozen=True)
class RunProjection:
    path: Path
    kind: str
    progress: RunProgress
    pace: Pace | None = None
    target: Target | None = None
    problem: str | None = None

    @property
    def minutes(self) -> tuple[float, float, float] | None:
        if self.pace is None or self.target is None:
            return None
        pace, tolerance = self.pace, self.pace.tolerance
        return (pace.minutes(self.target.mean), pace.minutes(self.target.low) * (1 - tolerance),
                pace.minutes(self.target.high) * (1 + tolerance))

    @property
    def real_minutes(self) -> float | None:
        stop = self.progress.run_stop_s
        return None if stop is None or self.kind == PROBE else stop / 60

    @property
    def converged(self) -> bool:
        return self.real_minutes is not None and self.progress.status == "success"

    @property
    def converged_at(self) -> float | None:
        return self.progress.evaluations[-1].at if self.converged and self.progress.evaluations else None

    @property
    def inside(self) -> bool | None:
        """Whether the real time of a converged run lies in the band."""
        if not self.converged or self.minutes is None:
            return None
        _, low, high = self.minutes
        return low <= self.real_minutes <= high  # type: ignore[operator]


@dataclass(frozen=True)
class SeriesProjection:
    folder: layout.BenchmarkFolder
    runs: tuple[RunProjection, ...]
    first: int
    description: dict[str, Any] | None = None

    @property
    def accelerators(self) -> compare.Accelerators | None:
        return compare.from_description(self.description)

    @property
    def projected(self) -> list[RunProjection]:
        return [run for run in self.runs if run.minutes is not None]

    def score(self) -> tuple[tuple[float, float, float] | None, str]:
        """The olympic mean of the runs' projections (and of their lows and highs), and how it was made."""
        projected = [run.minutes for run in self.projected]
        if not projected:
            return None, "no run can be projected yet"
        if len(projected) < 3:
            means = tuple(sum(m[i] for m in projected) / len(projected) for i in range(3))
            return means, f"mean of {len(projected)} projected run(s) (an olympic mean needs 3)"  # type: ignore[return-value]
        scores = [scoring.olympic([m[i] for m in projected]).minutes for i in range(3)]
        return tuple(scores), f"olympic mean of {len(projected)} projected runs"  # type: ignore[return-value]

    def real_score(self) -> scoring.Score | None:
        """The olympic mean of the finished runs (run_stop success counts as converged; results.summary checks
        compliance too)."""
        finished = [run for run in self.runs if run.real_minutes is not None]
        if not finished:
            return None
        return scoring.olympic([run.real_minutes if run.converged else None for run in finished])


def _pace(evaluations: Sequence[Evaluation]) -> Pace | None:
    if not evaluations:
        return None
    last = evaluations[-1]
    # The first interval holds the start-up and the first epoch's warm-up; the second still carries the first
    # evaluation's own (in the published Mask R-CNN logs 2-3% slower than the later ones).
    steady = evaluations[1:] if len(evaluations) >= 3 else evaluations
    if len(steady) < 2 or last.at == steady[0].at:
        rate, startup = (last.trained_s / last.at if last.at else 0.0), 0.0
        spread = 0.0
    else:
        rate = (last.trained_s - steady[0].trained_s) / (last.at - steady[0].at)
        startup = last.trained_s - rate * last.at
        cycles = [(b.trained_s - a.trained_s) / (b.at - a.at) for a, b in itertools.pairwise(steady)
                  if b.at > a.at]
        spread = (max(cycles) - min(cycles)) / rate if rate > 0 else 0.0
    steps = [b.at - a.at for a, b in itertools.pairwise(evaluations) if b.at > a.at]
    grid = min(steps) if steps else evaluations[0].at
    eval_s = statistics.median(e.scored_s - e.trained_s for e in evaluations)
    return Pace(rate, startup, eval_s, len(evaluations), last, grid or 1.0, evaluations[0].at,
                max(PACE_TOLERANCE, spread))


def _target(pace: Pace, reference: convergence.Reference) -> Target:
    half = max(BAND_SIGMAS * reference.stdev, pace.grid / 2)
    low = max(pace.first_at, pace.below(reference.mean - half))
    return Target(reference.mean, low, pace.above(reference.mean + half), reference)


def _kind(path: Path, progress: RunProgress) -> str:
    if path.name.startswith("probe_"):
        return PROBE
    return FINISHED if progress.finished else UNFINISHED


def _folder_reference(progress: RunProgress, runs: Sequence[RunProgress]) -> convergence.Reference | None:
    values = [r.evaluations[-1].at for r in runs if r.finished and r.status == "success" and r.evaluations
              and r.global_batch == progress.global_batch and r.unit_key == progress.unit_key
              and not r.path.name.startswith("probe_")]
    if not values:
        return None
    return convergence.from_runs(values, f"this folder's {len(values)} converged run(s) at batch "
                                        f"{progress.global_batch}")


def project_run(path: Path, progress: RunProgress, siblings: Sequence[RunProgress], *, first: int,
                ruleset: str | None) -> RunProjection:
    kind = _kind(path, progress)
    if progress.problem:
        return RunProjection(path, kind, progress, problem=progress.problem)
    used = progress.evaluations[:first] if kind == FINISHED else progress.evaluations
    pace = _pace(used)
    if pace is None:
        return RunProjection(path, kind, progress, problem="no evaluation yet: the pace is read from evaluations")
    if pace.seconds_per_unit <= 0 or any(b.trained_s < a.trained_s for a, b in itertools.pairwise(used)):
        return RunProjection(path, kind, progress, problem="its evaluations are not in training order (checkpoints "
                                                           "evaluated after training?): no pace from them")
    benchmark = progress.benchmark or path.parent.name
    if progress.global_batch is None:
        return RunProjection(path, kind, progress, pace, problem="no global_batch_size line: the reference "
                                                                  "convergence depends on the batch")
    try:
        reference = convergence.reference(benchmark, progress.global_batch, ruleset)
    except convergence.NoReferenceError as error:
        reference = _folder_reference(progress, siblings)
        if reference is None:
            return RunProjection(path, kind, progress, pace,
                                 problem=f"{error}; and no converged run at this batch in the folder")
    return RunProjection(path, kind, progress, pace, _target(pace, reference))


def _description(folder: layout.BenchmarkFolder) -> dict[str, Any] | None:
    try:
        return systems.read_description(folder.description_path) if folder.description_path.exists() else None
    except systems.SystemDescriptionError:
        return None  # results.summary names it; a projection does without


def project_folder(folder: layout.BenchmarkFolder, *, first: int = FIRST_EVALUATIONS,
                   ruleset: str | None = None) -> SeriesProjection:
    return project_files(folder, folder.files(LOG_GLOBS), first=first, ruleset=ruleset)


def project_files(folder: layout.BenchmarkFolder, paths: Sequence[Path], *, first: int = FIRST_EVALUATIONS,
                  ruleset: str | None = None) -> SeriesProjection:
    """The projection of some of a folder's logs (a probe series: the probes it just ran)."""
    progresses = [read_progress(path) for path in paths]
    runs = tuple(project_run(path, progress, progresses, first=first, ruleset=ruleset)
                 for path, progress in zip(paths, progresses, strict=True))
    return SeriesProjection(folder, runs, first, _description(folder))


def project(root: Path, *, first: int = FIRST_EVALUATIONS, ruleset: str | None = None) -> list[SeriesProjection]:
    return [project_folder(folder, first=first, ruleset=ruleset) for folder in layout.find(root, LOG_GLOBS)]


def _count(value: float) -> str:
    return f"{value:.4g}" if value < 1e5 else f"{value:,.0f}"


def _band(minutes: tuple[float, float, float]) -> str:
    return f"{minutes[0]:.2f} min ({minutes[1]:.2f}-{minutes[2]:.2f})"


def _target_line(series: SeriesProjection) -> str | None:
    targets = {(r.progress.global_batch, r.target.mean, r.target.low, r.target.high, r.target.reference.source,
                r.progress.unit) for r in series.runs if r.target}
    if len(targets) != 1:
        return None
    batch, mean, low, high, source, unit = targets.pop()
    return f"global batch {batch}: {_count(mean)} {unit} to converge, band {_count(low)}-{_count(high)} ({source})"


def _run_line(run: RunProjection) -> str:
    head = f"    {run.path.name:<22}{run.kind:<11}"
    if run.problem:
        pace = f"; {_pace_words(run)}" if run.pace else ""
        return f"{head}no projection: {run.problem}{pace}"
    words = f"{head}{_band(run.minutes)}  {_pace_words(run)}"  # type: ignore[arg-type]
    if run.real_minutes is not None:
        if run.converged:
            inside = "inside the band" if run.inside else "OUTSIDE the band"
            words += (f"; real {run.real_minutes:.2f} min, converged at {_count(run.converged_at)} "  # type: ignore[arg-type]
                      f"{run.progress.unit}: {inside}")
        else:
            words += f"; real {run.real_minutes:.2f} min, not converged ({run.progress.status or 'no status'})"
    elif run.progress.last_s is not None:
        words += f"; {run.progress.last_s / 60:.2f} min logged"
    return words


def _pace_words(run: RunProjection) -> str:
    pace = run.pace
    unit = run.progress.unit
    per = (f"{pace.seconds_per_unit:.2f} s per {unit.removesuffix('s')}"  # type: ignore[union-attr]
           if pace.seconds_per_unit >= 0.01 else f"{1 / pace.seconds_per_unit:,.0f} {unit}/s")  # type: ignore[union-attr]
    basis = (f"from {pace.evaluations} evaluation(s) up to {_count(pace.anchor.at)} {unit}"  # type: ignore[union-attr]
             + (" (warm-up included)" if pace.warm_up_included else ""))  # type: ignore[union-attr]
    return f"{per}, start-up {pace.startup_s:.1f} s, eval {pace.eval_s:.1f} s, {basis}"  # type: ignore[union-attr]


def headline(series: SeriesProjection) -> str:
    score, how = series.score()
    words = f"projected score {_band(score)} ({how})" if score else f"no projected score ({how})"
    real = series.real_score()
    if real is not None and real.minutes is not None and score:
        words += f"; real score {real.minutes:.2f} min ({100 * (score[0] / real.minutes - 1):+.1f}%)"
    elif real is not None:
        words += f"; no real score ({real.reason})"
    return f"{series.folder.label}: {words}"


def published_match(series: SeriesProjection, published: Sequence[Published]) -> compare.Match | None:
    return compare.best_match(series.folder.benchmark, series.accelerators, published)


def render_text(all_series: Sequence[SeriesProjection], published: Sequence[Published] = ()) -> str:
    lines = []
    for series in all_series:
        lines.append(headline(series))
        if (target := _target_line(series)) is not None:
            lines.append(f"    {target}")
        if (match := published_match(series, published)) is not None:
            score, _ = series.score()
            lines.append(f"    {match.words(score[0] if score else None, 'the projected score')}")
        lines += [_run_line(run) for run in series.runs]
    return "\n".join(lines)


def _run_data(run: RunProjection) -> dict[str, Any]:
    pace, target, minutes = run.pace, run.target, run.minutes
    return {
        "file": run.path.name, "kind": run.kind, "global_batch_size": run.progress.global_batch,
        "unit": run.progress.unit, "unit_key": run.progress.unit_key, "problem": run.problem,
        "projected_minutes": minutes[0] if minutes else None, "low_minutes": minutes[1] if minutes else None,
        "high_minutes": minutes[2] if minutes else None,
        "assumed": None if target is None else {
            "mean": target.mean, "low": target.low, "high": target.high, "stdev": target.reference.stdev,
            "runs": target.reference.runs, "source": target.reference.source},
        "pace": None if pace is None else {
            "evaluations_used": pace.evaluations, "up_to": pace.anchor.at, "seconds_per_unit": pace.seconds_per_unit,
            "startup_seconds": pace.startup_s, "eval_seconds": pace.eval_s,
            "warm_up_included": pace.warm_up_included, "evaluation_interval": pace.grid,
            "tolerance": pace.tolerance},
        "real_minutes": run.real_minutes, "converged": run.converged if run.real_minutes is not None else None,
        "converged_at": run.converged_at, "inside_band": run.inside,
        "logged_minutes": None if run.progress.last_s is None else run.progress.last_s / 60,
    }


def to_data(all_series: Sequence[SeriesProjection], published: Sequence[Published] = ()) -> dict[str, Any]:
    out = []
    for series in all_series:
        score, how = series.score()
        real = series.real_score()
        match = published_match(series, published)
        out.append({
            "label": series.folder.label, "benchmark": series.folder.benchmark, "system": series.folder.system,
            "folder": str(series.folder.path), "first_evaluations": series.first,
            "projected_score_minutes": score[0] if score else None, "low_minutes": score[1] if score else None,
            "high_minutes": score[2] if score else None, "score_reason": how,
            "real_score_minutes": real.minutes if real else None, "real_score_reason": real.reason if real else None,
            "accelerators": str(series.accelerators) if series.accelerators else None,
            "published": None if match is None else {
                "submitter": match.peer.submitter, "system": match.peer.system, "round": match.peer.round,
                "accelerators": match.peer.accelerators, "minutes": match.peer.minutes, "source": match.peer.source,
                "same_accelerators": match.same, "why": match.why,
                "percent_of_published": match.percent(score[0]) if score else None},
            "runs": [_run_data(run) for run in series.runs],
        })
    return {"series": out}
