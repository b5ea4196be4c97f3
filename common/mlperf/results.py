"""MLPerf results layout and score: `<results>/<system>/<benchmark>/result_<i>.txt`, olympic mean.

The layout is the one `mlperf_logging.result_summarizer` and `package_checker` read, so a folder
written here can be handed to them as it is. Stdlib only: the control plane uses it.

API:
- `result_dir(results_root, system, benchmark) -> Path`
- `next_result_path(results_root, system, benchmark) -> Path`: `result_<i>.txt` with the first
  unused i (0-based, as MLPerf submissions number them).
- `read_run(log_path) -> RunRecord`: run_start/run_stop times and status from the `:::MLLOG` lines;
  `RunRecord.minutes` is `(run_stop - run_start)` in minutes for a successful run, else None.
- `olympic_mean(minutes) -> float`: drop the fastest and the slowest run, mean of the rest. A
  non-converged run (None) counts as the slowest; more than one makes the result invalid
  (`ResultInvalidError`), as the rules since v0.7 say.
- `summarize(results_root, system, benchmark) -> Summary`: every run of one benchmark and its score
  (None with a reason when the runs cannot give one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

_MLLOG_PREFIX = ":::MLLOG "
_RESULT_NAME = re.compile(r"^result_(\d+)\.txt$")


class ResultInvalidError(ValueError):
    """The runs cannot give an MLPerf score (too few, or too many not converged)."""


class LogFormatError(ValueError):
    """A result file lacks the lines the score is computed from."""


@dataclass(frozen=True)
class RunRecord:
    path: Path
    run_start_ms: int
    run_stop_ms: int
    status: str

    @property
    def converged(self) -> bool:
        return self.status == "success"

    @property
    def minutes(self) -> float | None:
        return (self.run_stop_ms - self.run_start_ms) / 60000.0 if self.converged else None


@dataclass(frozen=True)
class Summary:
    runs: list[RunRecord]
    score_minutes: float | None
    reason: str


def result_dir(results_root: Path, system: str, benchmark: str) -> Path:
    return results_root / system / benchmark


def _indices(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _RESULT_NAME.match(p.name)))


def next_result_path(results_root: Path, system: str, benchmark: str) -> Path:
    directory = result_dir(results_root, system, benchmark)
    used = set(_indices(directory))
    index = next(i for i in range(len(used) + 1) if i not in used)
    return directory / f"result_{index}.txt"


def read_run(log_path: Path) -> RunRecord:
    start: int | None = None
    stop: int | None = None
    status = ""
    with log_path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            position = line.find(_MLLOG_PREFIX)
            if position < 0:
                continue
            try:
                record = json.loads(line[position + len(_MLLOG_PREFIX) :])
            except json.JSONDecodeError:
                continue
            if record.get("key") == "run_start":
                start = int(record["time_ms"])
            elif record.get("key") == "run_stop":
                stop = int(record["time_ms"])
                status = str((record.get("metadata") or {}).get("status", ""))
    if start is None or stop is None:
        missing = " and ".join(k for k, v in (("run_start", start), ("run_stop", stop)) if v is None)
        raise LogFormatError(f"{log_path}: no {missing} line in the MLPerf log")
    return RunRecord(log_path, start, stop, status)


def olympic_mean(minutes: list[float | None]) -> float:
    if len(minutes) < 3:
        raise ResultInvalidError(f"an olympic mean needs at least 3 runs, got {len(minutes)}")
    failed = sum(m is None for m in minutes)
    if failed > 1:
        raise ResultInvalidError(f"{failed} of {len(minutes)} runs did not converge; at most 1 may")
    converged = sorted(m for m in minutes if m is not None)
    kept = converged[1:] if failed else converged[1:-1]
    return fmean(kept)


def summarize(results_root: Path, system: str, benchmark: str) -> Summary:
    directory = result_dir(results_root, system, benchmark)
    runs = [read_run(directory / f"result_{i}.txt") for i in _indices(directory)]
    try:
        return Summary(runs, olympic_mean([r.minutes for r in runs]), "olympic mean")
    except ResultInvalidError as error:
        return Summary(runs, None, str(error))
