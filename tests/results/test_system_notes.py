"""The system description says how the runs flushed the page cache, from their logs, keeping the owner's notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.results import systems
from common.results.logs import read_log
from tests.results.generated import Run, log_lines


def _log(tmp_path: Path, value: bool, metadata: dict) -> Path:
    lines = [line for line in log_lines("maskrcnn", Run(5.0)) if '"cache_clear"' not in line]
    record = {"namespace": "", "time_ms": 1, "event_type": "POINT_IN_TIME", "key": "cache_clear", "value": value,
              "metadata": {"file": "t.py", "lineno": 1, **metadata}}
    path = tmp_path / "result_0.txt"
    path.write_text(":::MLLOG " + json.dumps(record) + "\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("value", "metadata", "note"), [
    (True, {"method": "fadvise", "files": 3, "seconds": 0.1},
     "Page cache: each run evicts every dataset file's pages (sync, then posix_fadvise POSIX_FADV_DONTNEED; no root "
     "needed) before run_start"),
    (True, {"method": "drop_caches"},
     "Page cache: each run drops the whole page cache (/proc/sys/vm/drop_caches) before run_start"),
    (False, {"method": "fadvise", "reason": "not evicted: /data/x: Permission denied"},
     "Page cache: not flushed (not evicted: /data/x: Permission denied)"),
])
def test_the_description_says_how_the_cache_was_flushed(tmp_path: Path, value: bool, metadata: dict,
                                                        note: str) -> None:
    log = read_log(_log(tmp_path, value, metadata))
    assert log.cache_clear == (value, metadata)
    written = systems.describe_local_run(tmp_path, "box", log)
    assert json.loads(written.path.read_text())["sw_notes"] == note


def test_the_owners_notes_stay_and_the_cache_note_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "systems" / "box.json"
    systems.describe_local_run(tmp_path, "box", read_log(_log(tmp_path, True, {"method": "drop_caches"})))
    described = json.loads(path.read_text())
    described["sw_notes"] = "NCCL 2.21; " + described["sw_notes"]
    path.write_text(json.dumps(described))
    systems.describe_local_run(tmp_path, "box", read_log(_log(tmp_path, True, {"method": "fadvise"})))
    assert json.loads(path.read_text())["sw_notes"] == (
        "NCCL 2.21; Page cache: each run evicts every dataset file's pages (sync, then posix_fadvise "
        "POSIX_FADV_DONTNEED; no root needed) before run_start")
