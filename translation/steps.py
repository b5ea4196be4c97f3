"""Preprocessing steps that record what they wrote, so reruns skip finished work and `verify` can
name the step whose output changed.

Each step records its outputs (name, size, mtime, md5) in `.steps/<name>.json` once they are
complete. A rerun skips a step whose outputs still have the recorded size and mtime, and reruns
every step from the first one it runs. Stdlib only: `verify` (control plane) reads the records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.atomic import write_text_atomic
from common.datasets.checksums import hash_file
from translation.layout import Wmt16Layout

log = logging.getLogger(__name__)

# The GNMT preprocessing steps in the order they run (translation.preprocess.pipeline).
STEP_NAMES = ("assemble", "tokenise", "clean", "bpe-learn", "bpe-apply", "vocab", "token-cache")


class PreprocessError(Exception):
    """An input is missing or malformed; the message names the file."""


@dataclass
class Step:
    name: str
    outputs: list[Path]
    action: Callable[[], object]
    ran: bool = field(default=False)


def md5_of(path: Path) -> str:
    return hash_file(path, "md5")


def output_record(path: Path, root: Path) -> dict[str, object]:
    st = path.stat()
    return {"name": str(path.relative_to(root)), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "md5": md5_of(path)}


def read_records(layout: Wmt16Layout, step: str) -> list[dict] | None:
    """The outputs `step` recorded, or None when it has not completed here."""
    marker = layout.step_records / f"{step}.json"
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))["outputs"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def _unchanged(root: Path, records: list[dict] | None, outputs: list[Path]) -> bool:
    if records is None or sorted(r["name"] for r in records) != sorted(str(p.relative_to(root)) for p in outputs):
        return False
    for record in records:
        path = root / record["name"]
        if not path.is_file():
            return False
        st = path.stat()
        if [st.st_size, st.st_mtime_ns] != [record["size"], record["mtime_ns"]]:
            return False
    return True


def run_steps(steps: list[Step], layout: Wmt16Layout) -> list[Step]:
    """Run steps in order, skipping complete ones until the first that must run."""
    layout.step_records.mkdir(parents=True, exist_ok=True)
    forced = False
    for step in steps:
        marker = layout.step_records / f"{step.name}.json"
        if not forced and _unchanged(layout.root, read_records(layout, step.name), step.outputs):
            log.info("skip %s: outputs complete", step.name)
            continue
        forced = True
        log.info("run %s", step.name)
        marker.unlink(missing_ok=True)
        step.action()
        records = [output_record(p, layout.root) for p in step.outputs]
        write_text_atomic(marker, json.dumps({"outputs": records}, indent=1) + "\n")
        step.ran = True
    return steps
