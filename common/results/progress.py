"""How far a run got and when: its evaluations in the unit its reference convergence counts.

A projection needs, for each evaluation of a run, where in training it stood (the coordinate
`rcp_checker` reads from `eval_accuracy`: `samples_count` where the log has it, else `epoch_num`, else
`step_num`; epochs for Mask R-CNN and GNMT, samples for the LLM benchmarks), when the training up to
there was done (the evaluation's `eval_start`, matched by coordinate, else the oldest unmatched one), and
when its result came. The evaluations' coordinates are used rather than epoch_start/stop because they
are what the reference counts, whatever an implementation numbers its epochs from (SSD's epoch_stop
counts from 0, its evaluations from 1). A log may end anywhere (a run still going, a probe, a line cut
short): what it holds so far is read, a line that is not a complete record is passed over.

API:
- `read_progress(path) -> RunProgress`
- `coordinate(metadata) -> (key, value) | None`: where an eval_* record stands
- `RunProgress`: benchmark, global_batch, unit_key, evaluations (`Evaluation(at, trained_s, scored_s)`,
  seconds after run_start), run_stop_s, status, last_s, problem
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MLLOG = ":::MLLOG "
# The keys rcp_checker reads a run's progress from, in the order it prefers them.
COORDINATE_KEYS = ("samples_count", "epoch_num", "step_num")
UNITS = {"samples_count": "samples", "epoch_num": "epochs", "step_num": "steps"}
# No MLPerf benchmark trains for more epochs than this; an epoch_num beyond it counts samples or tokens.
_MOST_EPOCHS = 10_000


@dataclass(frozen=True)
class Evaluation:
    at: float
    trained_s: float
    scored_s: float


@dataclass(frozen=True)
class RunProgress:
    path: Path
    benchmark: str | None
    global_batch: int | None
    unit_key: str | None
    evaluations: tuple[Evaluation, ...]
    run_stop_s: float | None
    status: str
    last_s: float | None
    problem: str | None = None

    @property
    def finished(self) -> bool:
        return self.run_stop_s is not None

    @property
    def unit(self) -> str:
        """epochs, samples or steps; the key's own name where an epoch_num counts samples (BERT, GPT-3, UNet3D)."""
        if self.unit_key == "epoch_num" and any(e.at > _MOST_EPOCHS for e in self.evaluations):
            return "epoch_num"
        return UNITS.get(self.unit_key or "", "epochs")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def coordinate(metadata: dict[str, Any]) -> tuple[str, float] | None:
    for key in COORDINATE_KEYS:
        value = _number(metadata.get(key))
        if value is not None:
            return key, value
    return None


@dataclass
class _Reader:
    benchmark: str | None = None
    global_batch: int | None = None
    start_ms: float | None = None
    stop_ms: float | None = None
    status: str = ""
    last_ms: float | None = None
    unit_key: str | None = None
    pending: list[tuple[float | None, float]] = field(default_factory=list)
    evaluations: dict[float, list[float]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        key, time_ms = record["key"], float(record["time_ms"])
        value, metadata = record.get("value"), record.get("metadata") or {}
        if key == "submission_benchmark" and self.benchmark is None:
            self.benchmark = str(value)
        elif key == "global_batch_size" and self.global_batch is None and _number(value) is not None:
            self.global_batch = int(value)
        elif key == "run_start" and self.start_ms is None:
            self.start_ms = time_ms
        if self.start_ms is None:
            return
        self.last_ms = time_ms
        if key == "run_stop" and self.stop_ms is None:
            self.stop_ms, self.status = time_ms, str(metadata.get("status", ""))
        elif key == "eval_start":
            where = coordinate(metadata)
            self.pending.append((where[1] if where else None, time_ms))
        elif key == "eval_accuracy" and (where := coordinate(metadata)) is not None:
            self._scored(*where, time_ms)

    def _scored(self, key: str, at: float, time_ms: float) -> None:
        self.unit_key = self.unit_key or key
        if key != self.unit_key:
            return
        if at in self.evaluations:  # another metric of the same evaluation: the result is complete later
            self.evaluations[at][1] = time_ms
            return
        match = next((i for i, (c, _) in enumerate(self.pending) if c == at), None)
        if match is None:
            match = next((i for i, (c, _) in enumerate(self.pending) if c is None), None)
        trained = self.pending[match][1] if match is not None else time_ms
        if match is not None:
            del self.pending[:match + 1]
        self.evaluations[at] = [trained, time_ms]

    def progress(self, path: Path) -> RunProgress:
        start = self.start_ms
        if start is None:
            return RunProgress(path, self.benchmark, self.global_batch, None, (), None, "", None,
                               "no run_start line: the run has not started its clock")
        evaluations = tuple(Evaluation(at, (t - start) / 1000, (s - start) / 1000)
                            for at, (t, s) in sorted(self.evaluations.items()))
        stop = None if self.stop_ms is None else (self.stop_ms - start) / 1000
        last = None if self.last_ms is None else (self.last_ms - start) / 1000
        return RunProgress(path, self.benchmark, self.global_batch, self.unit_key, evaluations, stop, self.status, last)


def read_progress(path: Path) -> RunProgress:
    reader = _Reader()
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            position = line.find(MLLOG)
            if position < 0:
                continue
            try:
                reader.add(json.loads(line[position + len(MLLOG):]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                continue  # a line cut short (the log is still being written, or was cut)
    return reader.progress(path)
