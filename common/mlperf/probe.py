"""`run --probe`: stop a run as soon as its MLPerf log holds enough to project its time to train.

A probe runs the benchmark as a timed run does, and watches the MLPerf log the training writes, reading
each line as it lands. Once the log holds `evaluations` evaluations (3 by default: the first two
intervals carry the start-up and the warm-up, the third gives the steady time per epoch; see
`common.results.projection`) or `minutes` have passed since run_start, it sends the training SIGTERM,
which ends it as Ctrl-C does (run_stop aborted, the log kept). It works for any training that writes an
MLPerf log, the project's and the published implementations alike, without their cooperation.

A probe's log is named `probe_<i>.txt`, never `result_<i>.txt`: results.summary, result_summarizer,
package_checker and rcp_checker read `result_*.txt` only, so a probe is never taken for a result;
`invoke results.project` reads both.

API:
- `ProbeLimit(evaluations=3, minutes=None)`
- `Probe(log_file, limit)`: `watch(proc)` starts watching (a thread), `finish()` stops it; `stopped`
  says why the probe ended the run (None when the run ended by itself first)
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common.results.progress import MLLOG, coordinate

DEFAULT_EVALUATIONS = 3
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class ProbeLimit:
    evaluations: int = DEFAULT_EVALUATIONS
    minutes: float | None = None

    def words(self) -> str:
        limit = f"{self.evaluations} evaluation(s)"
        return limit + (f" or {self.minutes:g} minute(s) after run_start" if self.minutes else "")


class Probe:
    def __init__(self, log_file: Path, limit: ProbeLimit, poll_seconds: float = _POLL_SECONDS) -> None:
        self.log_file = log_file
        self.limit = limit
        self.stopped: str | None = None
        self._poll = poll_seconds
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset = 0
        self._tail = b""
        self._evaluations: set[float] = set()
        self._started: float | None = None

    def watch(self, proc: subprocess.Popen) -> None:
        self._thread = threading.Thread(target=self._run, args=(proc,), name="mlperf-probe", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self, proc: subprocess.Popen) -> None:
        while not self._done.wait(self._poll):
            self._read()
            reason = self._reason()
            if reason is not None and proc.poll() is None:
                self.stopped = reason
                proc.send_signal(signal.SIGTERM)
                return

    def _reason(self) -> str | None:
        if len(self._evaluations) >= self.limit.evaluations:
            return f"{len(self._evaluations)} evaluation(s) logged"
        if self.limit.minutes and self._started is not None:
            minutes = (time.monotonic() - self._started) / 60
            if minutes >= self.limit.minutes:
                return f"{minutes:.1f} minute(s) after run_start"
        return None

    def _read(self) -> None:
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._offset)
                chunk = log.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        *lines, self._tail = (self._tail + chunk).split(b"\n")
        for line in lines:
            self._add(line.decode("utf-8", errors="replace"))

    def _add(self, line: str) -> None:
        position = line.find(MLLOG)
        if position < 0:
            return
        try:
            record = json.loads(line[position + len(MLLOG):])
        except json.JSONDecodeError:
            return
        if record.get("key") == "run_start" and self._started is None:
            self._started = time.monotonic()
        elif record.get("key") == "eval_accuracy" and self._started is not None:
            where = coordinate(record.get("metadata") or {})
            if where is not None:
                self._evaluations.add(where[1])
