"""Published MLPerf results to compare a score with: data with its sources, never code.

The project's figures are `published.yaml` next to this module; a user adds their own with YAML
files of the same shape (`results:` a list of entries with the fields of `Published`).

API:
- `load(extra=()) -> list[Published]`: the project's figures, then each extra file's
- `Published`: benchmark, round, submitter, system, accelerators ("<count>x <model>"), minutes, source, nodes
  (optional); `.accelerator_count` and `.accelerator_model` read from `accelerators` (None when it is not
  in that form)
- `PublishedDataError`: a file that is not such YAML, named with the entry and field at fault
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

BUILT_IN = Path(__file__).with_name("published.yaml")


class PublishedDataError(ValueError):
    """A published-results file is not a list of complete entries."""


@dataclass(frozen=True)
class Published:
    benchmark: str
    round: str
    submitter: str
    system: str
    accelerators: str
    minutes: float
    source: str
    nodes: int | None = None

    @property
    def label(self) -> str:
        return f"{self.submitter} {self.system} ({self.accelerators}), {self.round}"

    @property
    def accelerator_count(self) -> int | None:
        match = _COUNTED.match(self.accelerators)
        return int(match.group(1)) if match else None

    @property
    def accelerator_model(self) -> str | None:
        match = _COUNTED.match(self.accelerators)
        return match.group(2) if match else None


_COUNTED = re.compile(r"^\s*(\d+)\s*x\s*(\S.*?)\s*$")


_REQUIRED = [f.name for f in fields(Published) if f.name != "nodes"]


def _entry(path: Path, index: int, raw: Any) -> Published:
    where = f"{path}: results[{index}]"
    if not isinstance(raw, dict):
        raise PublishedDataError(f"{where}: expected a mapping of {', '.join(_REQUIRED)}")
    missing = [name for name in _REQUIRED if raw.get(name) in (None, "")]
    if missing:
        raise PublishedDataError(f"{where}: no {', '.join(missing)}")
    unknown = sorted(set(raw) - {f.name for f in fields(Published)})
    if unknown:
        raise PublishedDataError(f"{where}: unknown field(s) {', '.join(unknown)}")
    try:
        minutes = float(raw["minutes"])
        nodes = None if raw.get("nodes") is None else int(raw["nodes"])
    except (TypeError, ValueError) as error:
        raise PublishedDataError(f"{where}: minutes must be a number and nodes a whole number ({error})") from error
    if minutes <= 0:
        raise PublishedDataError(f"{where}: minutes must be above 0, not {minutes}")
    return Published(str(raw["benchmark"]), str(raw["round"]), str(raw["submitter"]), str(raw["system"]),
                     str(raw["accelerators"]), minutes, str(raw["source"]), nodes)


def _read(path: Path) -> list[Published]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PublishedDataError(f"{path}: unreadable ({error})") from error
    except yaml.YAMLError as error:
        raise PublishedDataError(f"{path}: not YAML ({error})") from error
    entries = document.get("results") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise PublishedDataError(f"{path}: expected a top-level 'results:' list")
    return [_entry(path, i, raw) for i, raw in enumerate(entries)]


def load(extra: Iterable[Path] = ()) -> list[Published]:
    return [entry for path in (BUILT_IN, *extra) for entry in _read(path)]
