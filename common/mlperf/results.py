"""The MLPerf results layout runs write: `<results>/<system>/<benchmark>/result_<i>.txt`.

The layout is the one `mlperf_logging.result_summarizer` and `package_checker` read, so a folder
written here can be handed to them as it is. Scores, system descriptions and reports of these
folders are `common.results`. Stdlib only: the control plane uses it.

API:
- `result_dir(results_root, system, benchmark) -> Path`
- `next_result_path(results_root, system, benchmark, prefix="result") -> Path`: `result_<i>.txt` with the
  first unused i (0-based, as MLPerf submissions number them); `prefix="probe"` names a probe's log
  `probe_<i>.txt`, which nothing that scores a folder reads (they all read `result_*.txt`).
"""

from __future__ import annotations

import re
from pathlib import Path

RESULT, PROBE = "result", "probe"


def result_dir(results_root: Path, system: str, benchmark: str) -> Path:
    return results_root / system / benchmark


def _indices(directory: Path, prefix: str) -> list[int]:
    if not directory.is_dir():
        return []
    name = re.compile(rf"^{prefix}_(\d+)\.txt$")
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := name.match(p.name)))


def next_result_path(results_root: Path, system: str, benchmark: str, prefix: str = RESULT) -> Path:
    directory = result_dir(results_root, system, benchmark)
    used = set(_indices(directory, prefix))
    index = next(i for i in range(len(used) + 1) if i not in used)
    return directory / f"{prefix}_{index}.txt"
