"""The page cache drop MLPerf asks for before a run (the log's `cache_clear` says whether it happened)."""

from __future__ import annotations

import os
from pathlib import Path

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> bool:
    """Drop the page cache when allowed (root on the host); False where the system does not let us."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def evict(roots: list[Path]) -> tuple[int, int, list[str]]:
    """Evict every file under `roots` from the page cache (posix_fadvise DONTNEED), which any user may do for
    files it can read: a container's stand-in for dropping the whole cache. (files, bytes, failures)."""
    files = size = 0
    failures: list[str] = []
    for root in roots:
        if not os.path.exists(root):
            failures.append(f"{root}: no such file or directory")
        paths = [str(root)] if os.path.isfile(root) else [
            os.path.join(folder, name) for folder, _, names in os.walk(root, followlinks=True) for name in names]
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as error:
                failures.append(f"{path}: {error.strerror}")
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                files += 1
                size += os.fstat(fd).st_size
            except OSError as error:
                failures.append(f"{path}: {error.strerror}")
            finally:
                os.close(fd)
    return files, size, failures
