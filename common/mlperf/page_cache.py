"""The cache flush MLPerf asks for before a run; the log's `cache_clear` is true only when it was done.

Root on the host drops the whole page cache (`/proc/sys/vm/drop_caches`). A container without root cannot,
but evicting the dataset's own pages needs no privilege: after a sync has written dirty pages back,
`posix_fadvise(POSIX_FADV_DONTNEED)` on each of the dataset's files drops its clean pages from the cache
(pages another process keeps mapped or locked stay). Either way the first epoch then reads the dataset from
storage, as a run on a cold machine does. Trainers call `flush_page_cache(data_dir)` on each node before
`init_start`, which is after run_and_time's checksum pass (that pass reads the files and warms the cache).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


@dataclass(frozen=True)
class Flush:
    done: bool
    method: str  # "drop_caches": the whole page cache; "fadvise": the dataset's files; "none"
    files: int = 0
    seconds: float = 0.0
    reason: str = ""  # why it was not done

    def metadata(self) -> dict[str, Any]:
        """What the log's cache_clear line carries besides true/false."""
        found: dict[str, Any] = {"method": self.method}
        if self.method == "fadvise":
            found |= {"files": self.files, "seconds": round(self.seconds, 1)}
        if self.reason:
            found["reason"] = self.reason
        return found


def _evict(path: str) -> str | None:
    """Drop one file's clean pages; the error in words, or None."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError as error:
        return f"{path}: {error.strerror}"
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError as error:
        return f"{path}: posix_fadvise: {error.strerror}"
    finally:
        os.close(descriptor)
    return None


def _evict_files(root: Path, started: float) -> Flush:
    """posix_fadvise(DONTNEED) on every file under `root`: no privilege needed."""
    if not hasattr(os, "posix_fadvise"):
        return Flush(False, "none", reason="this system has no posix_fadvise")
    if not root.is_dir():
        return Flush(False, "none", reason=f"{root}: no such folder")
    files, failures = 0, []
    for folder, _, names in os.walk(root, followlinks=True):
        for name in names:
            problem = _evict(os.path.join(folder, name))
            if problem is None:
                files += 1
            else:
                failures.append(problem)
    seconds = time.monotonic() - started
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        return Flush(False, "fadvise", files, seconds, f"not evicted: {failures[0]}{more}")
    return Flush(True, "fadvise", files, seconds)


def flush_page_cache(dataset: Path) -> Flush:
    """Drop the page cache where allowed (root on the host), else evict the dataset's files from it."""
    started = time.monotonic()
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError:
        return _evict_files(dataset, started)
    return Flush(True, "drop_caches", seconds=time.monotonic() - started)
