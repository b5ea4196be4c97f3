"""Whether a dataset folder may be written: a cluster run mounts its dataset read-only, and a command
that would build a missing sample there must leave that to `prepare` instead."""

from __future__ import annotations

import os
from pathlib import Path


def writable(data_dir: Path) -> bool:
    """The folder (or the nearest existing folder above it, where it would be made) can be written."""
    existing = next(p for p in (data_dir, *data_dir.parents) if p.exists())
    return os.access(existing, os.W_OK)
