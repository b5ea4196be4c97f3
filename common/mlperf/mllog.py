"""MLPerf log lines (`:::MLLOG {...}`) for the training side of every benchmark.

MLPerf's tools (compliance checker, result summariser) read only these lines, so every benchmark
writes them through this one module: rank 0 prints each line to stdout and appends it to a log
file (flushed per line, so an interrupted run keeps what it logged); other ranks write nothing.

API (training processes only: it imports `mlperf_logging`, never torch):

    from common.mlperf.mllog import MLLog, constants as mlc
    with MLLog.open(Path("result_0.txt"), rank=0) as log:
        log.submission("maskrcnn", org="Backend.AI", platform="1xCPU")
        log.event(mlc.CACHE_CLEAR, True)
        log.start(mlc.INIT_START)
        ...
        log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.SUCCESS})

- `MLLog.open(path, *, rank)`: `path=None` prints to stdout only. Each `open` gets its own logger,
  so several runs in one process never share handlers.
- `event` / `start` / `end(key, value=None, metadata=None)`: as `mlperf_logging.mllog.mllog.MLLogger`;
  the line's `file`/`lineno` metadata name the caller, relative to the repository root.
- `submission(benchmark, org, platform, division="closed", status="onprem", division_metadata=None)`:
  the five `submission_*` keys every ruleset requires (the trainers put why a run is open in the
  metadata of its division).
- `enabled`: False on ranks that log nothing (skip costly values there).
- `constants`: `mlperf_logging.mllog.constants` (key names, `SUCCESS`, `ABORTED`, ...).
"""

from __future__ import annotations

import itertools
import logging
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from mlperf_logging.mllog import constants
from mlperf_logging.mllog.mllog import MLLogger

__all__ = ["MLLog", "constants"]

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
_instances = itertools.count()


class MLLog:
    """A rank-aware MLPerf logger writing to stdout and one file."""

    def __init__(self, logger: logging.Logger | None) -> None:
        self._logger = logger
        # Our wrapper adds one stack frame between the caller and mlperf_logging.
        self._mllogger = None
        if logger is not None:
            self._mllogger = MLLogger(logger=logger, default_stack_offset=2, root_dir=_REPO_ROOT)

    @classmethod
    def open(cls, path: Path | None, *, rank: int = 0) -> MLLog:
        if rank != 0:
            return cls(None)
        logger = logging.getLogger(f"mlperf_backendai.mllog.{next(_instances)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(logging.StreamHandler(sys.stdout))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            logger.addHandler(logging.FileHandler(path, mode="a", encoding="utf-8"))
        return cls(logger)

    @property
    def enabled(self) -> bool:
        return self._mllogger is not None

    def event(self, key: str, value: Any = None, metadata: dict[str, Any] | None = None) -> None:
        if self._mllogger:
            self._mllogger.event(key, value=value, metadata=metadata)

    def start(self, key: str, value: Any = None, metadata: dict[str, Any] | None = None) -> None:
        if self._mllogger:
            self._mllogger.start(key, value=value, metadata=metadata)

    def end(self, key: str, value: Any = None, metadata: dict[str, Any] | None = None) -> None:
        if self._mllogger:
            self._mllogger.end(key, value=value, metadata=metadata)

    def submission(
        self, benchmark: str, *, org: str, platform: str, division: str = "closed", status: str = "onprem",
        division_metadata: dict[str, Any] | None = None,
    ) -> None:
        if not self._mllogger:
            return
        for key, value in (
            (constants.SUBMISSION_BENCHMARK, benchmark),
            (constants.SUBMISSION_ORG, org),
            (constants.SUBMISSION_PLATFORM, platform),
            (constants.SUBMISSION_DIVISION, division),
            (constants.SUBMISSION_STATUS, status),
        ):
            metadata = division_metadata if key == constants.SUBMISSION_DIVISION else None
            self._mllogger.event(key, value=value, metadata=metadata)

    def close(self) -> None:
        if self._logger is None:
            return
        for handler in list(self._logger.handlers):
            handler.close()
            self._logger.removeHandler(handler)

    def __enter__(self) -> MLLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
