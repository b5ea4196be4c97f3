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
