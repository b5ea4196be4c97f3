"""One pass over an MLPerf log: what the score, the ruleset detection and the plots need.

A log is read for its `:::MLLOG` lines (anywhere on a line, as the checker finds them behind rank
prefixes such as `0: `). What makes a log unusable is kept as `RunLog.problem`, in words that
name the line, rather than raised, so that one bad file never hides the others.

API:
- `read_log(path) -> RunLog`
- `RunLog.minutes`: `(run_stop - run_start)` in minutes, as `result_summarizer` computes it (or None).
- `RunLog.evals`: `EvalPoint(minutes since run_start, epoch, value)` per `eval_accuracy`.
- `RunLog.throughput`: `EpochThroughput(epoch, samples/s)`: logged `tracked_stats` throughput
  where the log has it, else `train_samples` over each `epoch_start`..`epoch_stop` (or block) span.
- `RunLog.seeds`: `(file, lineno, seed)` of each `seed` line, what `package_checker`'s seed checker compares.
- `RunLog.cache_clear`: the first `cache_clear` line's value and metadata (how the cache was flushed), or None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MLLOG = ":::MLLOG "
_V06 = ":::MLL "
_SUBMISSION = ("benchmark", "org", "division", "status", "platform")
_PROBLEMS_SHOWN = 4


@dataclass(frozen=True)
class EvalPoint:
    minutes: float
    epoch: float | None
    value: Any


@dataclass(frozen=True)
class EpochThroughput:
    epoch: float
    samples_per_second: float


@dataclass(frozen=True)
class RunLog:
    path: Path
    run_start_ms: float | None
    run_stop_ms: float | None
    status: str
    submission: dict[str, str]
    keys: frozenset[str]
    evals: tuple[EvalPoint, ...] = ()
    throughput: tuple[EpochThroughput, ...] = ()
    problem: str | None = None
    seeds: tuple[tuple[str, int, int], ...] = ()
    cache_clear: tuple[Any, dict[str, Any]] | None = None

    @property
    def minutes(self) -> float | None:
        if self.run_start_ms is None or self.run_stop_ms is None:
            return None
        return (self.run_stop_ms - self.run_start_ms) / 60 / 1000


@dataclass
class _Reader:
    """Accumulates the records of one log in file order."""

    start: float | None = None
    stop: float | None = None
    status: str = ""
    submission: dict[str, str] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    evals: list[tuple[float, float | None, Any]] = field(default_factory=list)
    logged_throughput: list[EpochThroughput] = field(default_factory=list)
    spans: dict[float, list[float]] = field(default_factory=dict)
    train_samples: float | None = None
    seeds: list[tuple[str, int, int]] = field(default_factory=list)
    cache_clear: tuple[Any, dict[str, Any]] | None = None

    def add(self, record: dict[str, Any]) -> None:
        key, time_ms = record["key"], float(record["time_ms"])
        value, metadata = record.get("value"), record.get("metadata") or {}
        self.keys.add(key)
        # result_summarizer takes the run_start and run_stop it has seen when it first has both.
        if self.start is None or self.stop is None:
            if key == "run_start":
                self.start = time_ms
            elif key == "run_stop":
                self.stop = time_ms
                self.status = str(metadata.get("status", ""))
        if key.startswith("submission_") and key[len("submission_"):] in _SUBMISSION:
            self.submission[key[len("submission_"):]] = str(value)
        elif key == "eval_accuracy":
            self.evals.append((time_ms, _number(metadata.get("epoch_num")), value))
        elif key == "train_samples":
            self.train_samples = _number(value)
        elif key == "seed" and _number(value) is not None:
            self.seeds.append((str(metadata.get("file")), int(metadata.get("lineno") or 0), int(value)))
        elif key == "cache_clear" and self.cache_clear is None:
            self.cache_clear = (value, {k: v for k, v in metadata.items() if k not in ("file", "lineno")})
        elif key == "tracked_stats" and isinstance(value, dict) and "throughput" in value:
            epoch = _number(metadata.get("epoch_num"))
            rate = _number(value["throughput"])
            if epoch is not None and rate is not None:
                self.logged_throughput.append(EpochThroughput(epoch, rate))
        elif key in ("epoch_start", "epoch_stop"):
            self._span(key.endswith("start"), _number(metadata.get("epoch_num")), 1.0, time_ms)
        elif key in ("block_start", "block_stop"):
            count = _number(metadata.get("epoch_count")) or 1.0
            self._span(key.endswith("start"), _number(metadata.get("first_epoch_num")), count, time_ms)

    def _span(self, opens: bool, epoch: float | None, epochs: float, time_ms: float) -> None:
        if epoch is None:
            return
        if opens:
            self.spans[epoch] = [time_ms, epochs]
        elif epoch in self.spans and len(self.spans[epoch]) == 2:
            self.spans[epoch].append(time_ms)

    def throughput(self) -> tuple[EpochThroughput, ...]:
        if self.logged_throughput:
            return tuple(self.logged_throughput)
        if not self.train_samples:
            return ()
        return tuple(
            EpochThroughput(epoch, self.train_samples * span[1] / ((span[2] - span[0]) / 1000))
            for epoch, span in sorted(self.spans.items())
            if len(span) == 3 and span[2] > span[0]
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def read_log(path: Path) -> RunLog:
    reader = _Reader()
    problems: list[str] = []
    mllog_lines = v06_lines = 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            position = line.find(MLLOG)
            if position < 0:
                v06_lines += _V06 in line
                continue
            mllog_lines += 1
            try:
                record = json.loads(line[position + len(MLLOG):])
                reader.add(record)
            except json.JSONDecodeError:
                cut = "" if line.endswith("\n") else " (the file ends there: cut short?)"
                problems.append(f"line {number} is not a complete :::MLLOG record{cut}")
            except KeyError as error:
                problems.append(f"line {number}: :::MLLOG record without a {error} field")
            except (AttributeError, TypeError, ValueError) as error:
                problems.append(f"line {number}: :::MLLOG record that cannot be read ({error})")
    if len(problems) > _PROBLEMS_SHOWN:
        problems[_PROBLEMS_SHOWN - 1:] = [f"{len(problems) - _PROBLEMS_SHOWN + 1} more such lines"]
    if not mllog_lines:
        problems.append("MLPerf v0.6 log format (:::MLL lines), which the current rules do not read"
                        if v06_lines else "no :::MLLOG lines: not an MLPerf log")
    else:
        missing = [k for k, v in (("run_start", reader.start), ("run_stop", reader.stop)) if v is None]
        if missing:
            problems.append(f"no {' and no '.join(missing)} line (the run did not finish, or the log was cut)")
    start = reader.start
    evals = () if start is None else tuple(EvalPoint((t - start) / 60000, e, v) for t, e, v in reader.evals)
    return RunLog(path, reader.start, reader.stop, reader.status, reader.submission, frozenset(reader.keys),
                  evals, reader.throughput(), "; ".join(problems) or None, tuple(reader.seeds), reader.cache_clear)
