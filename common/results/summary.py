"""Every system x benchmark under a folder, scored as MLCommons scores it, with the reasons.

Each result file is read (`common.results.logs`), its folder's ruleset chosen
(`common.results.rulesets`), and every readable log judged by the compliance checker; both run in
worker processes, one per core, because the checker takes most of the time. A run the checker
refuses is dropped, as `result_summarizer` drops it; so is an unreadable log (no run_start or
run_stop, a line cut short, a log of another benchmark), which is also reported as skipped. A
systems JSON that cannot be read is skipped with its reason; the score is still given.

API:
- `summarize(root, *, ruleset=None, workers=None) -> Summary` (raises `layout.NoResultsError`)
- `summarize_folders(folders, *, ruleset=None, workers=None) -> Summary`
- `headline(result) -> str`: the one line `invoke results.summary` and run_and_time print per folder
- `render_text(summary, published=()) -> str`, `to_data(summary, published=()) -> dict` (what `--json`
  prints): with published results (`common.results.published`), each score is set beside the published
  result of the same benchmark, accelerator model and count (`common.results.compare`), as a percentage
- `Run.outcome`: SCORED, NOT_CONVERGED, NON_COMPLIANT, UNREADABLE or UNCHECKED (no ruleset)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.mlperf.compliance import Verdict, check_in_worker
from common.results import compare, layout, rulesets, scoring, systems
from common.results.logs import RunLog, read_log
from common.results.published import Published

SCORED, NOT_CONVERGED, NON_COMPLIANT, UNREADABLE, UNCHECKED = (
    "scored", "not converged", "not compliant", "unreadable", "not checked")


@dataclass(frozen=True)
class Run:
    path: Path
    log: RunLog
    outcome: str
    reason: str = ""
    complaints: tuple[str, ...] = ()

    @property
    def minutes(self) -> float | None:
        return self.log.minutes


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass(frozen=True)
class BenchmarkResult:
    folder: layout.BenchmarkFolder
    ruleset: str | None
    ruleset_source: str
    required_runs: int | None
    runs: tuple[Run, ...]
    score: scoring.Score
    notes: tuple[str, ...]
    description: dict[str, Any] | None

    @property
    def provisional(self) -> str | None:
        if self.required_runs is None or len(self.runs) >= self.required_runs:
            return None
        return f"provisional: {len(self.runs)} of the {self.required_runs} runs MLPerf requires"


@dataclass(frozen=True)
class Summary:
    root: Path | None
    results: tuple[BenchmarkResult, ...]
    skipped: tuple[Skipped, ...]


def summarize(root: Path, *, ruleset: str | None = None, workers: int | None = None) -> Summary:
    summary = summarize_folders(layout.find(root), ruleset=ruleset, workers=workers)
    return Summary(root, summary.results, summary.skipped)


def _workers(requested: int | None, jobs: int) -> int:
    return max(1, min(requested or len(os.sched_getaffinity(0)), jobs))


def _foreign(log: RunLog, benchmark: str) -> str | None:
    logged = log.submission.get("benchmark")
    if logged is None or logged == benchmark:
        return None
    return f"submission_benchmark {logged!r}: a log of another benchmark in the {benchmark} folder"


def _run(path: Path, log: RunLog, verdict: Verdict | None, problem: str | None) -> Run:
    if problem is not None:
        return Run(path, log, UNREADABLE, problem)
    if verdict is None:
        return Run(path, log, UNCHECKED, "no ruleset to check it against")
    if verdict.passed:
        return Run(path, log, SCORED)
    if verdict.quality_target_missed and not verdict.other_complaints:
        return Run(path, log, NOT_CONVERGED, "quality target not reached", tuple(verdict.complaints))
    first = verdict.other_complaints[0].splitlines()[0]
    more = len(verdict.other_complaints) - 1
    return Run(path, log, NON_COMPLIANT, first + (f" (and {more} more)" if more else ""), tuple(verdict.complaints))


def _scaling(folder: layout.BenchmarkFolder, skipped: list[Skipped]) -> float:
    path = folder.path / "scaling.json"
    if not path.exists():
        return 1.0
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["scaling_factor"])
    except (ValueError, KeyError, TypeError, OSError) as error:
        skipped.append(Skipped(path, f"no scaling_factor number ({error}); the score is not scaled"))
        return 1.0


class _Descriptions:
    """Each systems JSON read once, each problem reported once."""

    def __init__(self, skipped: list[Skipped]) -> None:
        self._seen: dict[Path, dict[str, Any] | None] = {}
        self._skipped = skipped

    def get(self, folder: layout.BenchmarkFolder) -> dict[str, Any] | None:
        path = folder.description_path
        if path not in self._seen:
            self._seen[path] = self._read(folder, path)
        return self._seen[path]

    def _read(self, folder: layout.BenchmarkFolder, path: Path) -> dict[str, Any] | None:
        left_out = f"result_summarizer leaves system {folder.system} out"
        if not path.exists():
            if folder.description_required:
                self._skipped.append(Skipped(path, f"missing; {left_out}"))
            return None
        try:
            return systems.read_description(path)
        except systems.SystemDescriptionError as error:
            self._skipped.append(Skipped(path, f"{str(error).removeprefix(f'{path}: ')}; {left_out}"))
            return None


@dataclass(frozen=True)
class _Examined:
    """Every log read, every folder's ruleset chosen, every readable log judged."""

    logs: dict[Path, RunLog]
    choices: dict[layout.BenchmarkFolder, rulesets.Choice]
    problems: dict[Path, str | None]
    verdicts: dict[Path, Verdict]


def _examine(files: dict[layout.BenchmarkFolder, list[Path]], ruleset: str | None, workers: int | None) -> _Examined:
    paths = [p for found in files.values() for p in found]
    if not paths:
        return _Examined({}, {f: rulesets.choose(f.benchmark, [], ruleset) for f in files}, {}, {})
    with ProcessPoolExecutor(max_workers=_workers(workers, len(paths))) as pool:
        logs = dict(zip(paths, pool.map(read_log, paths, chunksize=4), strict=True))
        choices = {f: rulesets.choose(f.benchmark, [logs[p] for p in found], ruleset) for f, found in files.items()}
        problems = {p: logs[p].problem or _foreign(logs[p], f.benchmark) for f, found in files.items() for p in found}
        jobs = [(p, choices[f].ruleset) for f, found in files.items() if choices[f].ruleset
                for p in found if problems[p] is None]
        checked = pool.map(check_in_worker, [p for p, _ in jobs], [r for _, r in jobs])
        verdicts = dict(zip([p for p, _ in jobs], checked, strict=True))
    return _Examined(logs, choices, problems, verdicts)


def _notes(found: list[Path], required: int | None) -> tuple[str, ...]:
    notes = [n for n in (layout.numbering(found),) if n]
    if required is not None and len(found) > required:
        notes.append(f"{len(found)} result files; a submission has exactly {required} "
                     "(package_checker refuses the folder)")
    return tuple(notes)


def summarize_folders(
    folders: Sequence[layout.BenchmarkFolder], *, ruleset: str | None = None, workers: int | None = None
) -> Summary:
    files = {folder: folder.results() for folder in folders}
    seen = _examine(files, ruleset, workers)
    skipped: list[Skipped] = []
    descriptions = _Descriptions(skipped)
    results = []
    for folder, found in files.items():
        choice = seen.choices[folder]
        runs = tuple(_run(p, seen.logs[p], seen.verdicts.get(p), seen.problems[p]) for p in found)
        skipped += [Skipped(run.path, run.reason) for run in runs if run.outcome == UNREADABLE]
        if choice.ruleset is None:
            skipped.append(Skipped(folder.path, choice.source))
            score = scoring.Score(None, (), choice.source)
        else:
            score = scoring.olympic([r.minutes if r.outcome == SCORED else None for r in runs],
                                    max_dropped=rulesets.max_dropped(folder.benchmark),
                                    scaling=_scaling(folder, skipped))
        required = rulesets.required_runs(folder.benchmark)
        results.append(BenchmarkResult(folder, choice.ruleset, choice.source, required, runs, score,
                                       _notes(found, required), descriptions.get(folder)))
    return Summary(None, tuple(results), tuple(skipped))


def _dropped(result: BenchmarkResult) -> str | None:
    dropped = [f"{r.path.name} ({r.outcome})" for r in result.runs if r.outcome != SCORED]
    return f"dropped: {', '.join(dropped)}" if dropped else None


def headline(result: BenchmarkResult) -> str:
    minutes = result.score.minutes
    score = f"{minutes:.2f} minutes" if minutes is not None else "no score"
    ruleset = f"ruleset {result.ruleset} ({result.ruleset_source})" if result.ruleset else None
    details = [result.score.reason, ruleset, result.provisional, _dropped(result), *result.notes]
    return f"{result.folder.label}: {score} ({'; '.join(d for d in details if d)})"


def _system_line(description: dict[str, Any]) -> str:
    per_node = description.get("accelerators_per_node")
    accelerators = (f"x {per_node} {description.get('accelerator_model_name')}" if str(per_node) not in ("0", "")
                    else "without accelerators")
    return (f"system: {description.get('system_name')}: {description.get('number_of_nodes')} node(s) {accelerators}; "
            f"{description.get('host_processor_model_name')}; {description.get('framework')}")


def _run_line(result: BenchmarkResult, index: int, run: Run) -> str:
    minutes = f"{run.minutes:8.2f} min" if run.minutes is not None else f"{'-':>8}    "
    if run.outcome != SCORED:
        state = f"{run.outcome}: {run.reason}"
    else:
        state = "counted" if index in result.score.counted else "left out by the olympic mean"
    return f"    {run.path.name:<16}{minutes}  {state}"


def published_match(result: BenchmarkResult, published: Sequence[Published]) -> compare.Match | None:
    return compare.best_match(result.folder.benchmark, compare.from_description(result.description), published)


def _published_line(result: BenchmarkResult, published: Sequence[Published]) -> str | None:
    if not published:
        return None
    match = published_match(result, published)
    if match is None:
        why = ("no system description to tell its accelerators" if compare.from_description(result.description)
               is None else f"no published {result.folder.benchmark} result")
        return f"    published: none to compare with ({why})"
    return f"    {match.words(result.score.minutes)}"


def render_text(summary: Summary, published: Sequence[Published] = ()) -> str:
    lines = []
    for result in summary.results:
        lines.append(headline(result))
        if result.description:
            lines.append(f"    {_system_line(result.description)}")
        if (line := _published_line(result, published)) is not None:
            lines.append(line)
        lines += [_run_line(result, i, run) for i, run in enumerate(result.runs)]
    return "\n".join(lines)


def _match_data(result: BenchmarkResult, published: Sequence[Published]) -> dict[str, Any] | None:
    match = published_match(result, published)
    if match is None:
        return None
    minutes = result.score.minutes
    return {"submitter": match.peer.submitter, "system": match.peer.system, "round": match.peer.round,
            "accelerators": match.peer.accelerators, "minutes": match.peer.minutes, "source": match.peer.source,
            "same_accelerators": match.same, "why": match.why,
            "percent_of_published": None if minutes is None else match.percent(minutes)}


def to_data(summary: Summary, published: Sequence[Published] = ()) -> dict[str, Any]:
    return {
        "root": str(summary.root) if summary.root else None,
        "results": [
            {
                "label": r.folder.label, "submitter": r.folder.submitter, "system": r.folder.system,
                "benchmark": r.folder.benchmark, "folder": str(r.folder.path),
                "ruleset": r.ruleset, "ruleset_source": r.ruleset_source,
                "score_minutes": r.score.minutes, "reason": r.score.reason,
                "required_runs": r.required_runs, "provisional": r.provisional, "notes": list(r.notes),
                "runs": [
                    {"file": run.path.name, "minutes": run.minutes, "outcome": run.outcome,
                     "counted": i in r.score.counted, "reason": run.reason, "complaints": list(run.complaints)}
                    for i, run in enumerate(r.runs)
                ],
                "system_description": r.description,
                "published": _match_data(r, published),
            }
            for r in summary.results
        ],
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in summary.skipped],
    }
