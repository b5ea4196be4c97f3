"""The MLPerf results layout runs write: `<results>/<system>/<benchmark>/result_<i>.txt`.

The layout is the one `mlperf_logging.result_summarizer` and `package_checker` read, so a folder
written here can be handed to them as it is. Scores, system descriptions and reports of these
folders are `common.results`. Stdlib only: the control plane uses it.

API:
- `result_dir(results_root, system, benchmark) -> Path`
- `next_result_path(results_root, system, benchmark) -> Path`: `result_<i>.txt` with the first
  unused i (0-based, as MLPerf submissions number them).
"""

from __future__ import annotations

import re
from pathlib import Path

_RESULT_NAME = re.compile(r"^result_(\d+)\.txt$")


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
