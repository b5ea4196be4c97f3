"""What `prepare` wrote: the size and sha256 of every file it extracted or generated.

Archive checksums prove the download; they say nothing about the extracted tree after a bad copy to
a cluster's storage or an upload cut short. So `prepare` records each file it writes, one JSON file
per source under `<data_dir>/.inventory/` (an extracted archive, named after it, or a generator such
as a benchmark's sample), and `verify` compares: sizes always, digests with `--full`. The inventory
also keeps what its files came from (`source`), so an archive that changed is extracted again.

API:
- `record(data_dir, name, source, files, jobs=4)`: hash `files` in parallel and write inventory `name`.
- `source_of(data_dir, name) -> dict | None`: the source inventory `name` recorded, None when absent.
- `recorded_files(data_dir) -> list[RecordedFile]`: every file of every inventory under `data_dir`.
- `RecordedFile.size_problem() -> str | None`: the file is missing or not the size `prepare` recorded.
- `files_under(paths) -> list[Path]`: the regular files in and below `paths` (what an extraction placed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import write_text_atomic
from common.datasets.checksums import Checksum, hash_files

INVENTORY_DIR = ".inventory"
ALGORITHM = "sha256"


class InventoryError(ValueError):
    """An inventory file is unreadable or names a path outside the data folder."""


@dataclass(frozen=True)
class RecordedFile:
    path: Path
    size: int
    checksum: Checksum

    def size_problem(self) -> str | None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return f"{self.path}: missing (prepare recorded {self.size} bytes)"
        if size != self.size:
            return (f"{self.path}: {size} bytes, prepare recorded {self.size} "
                    "(cut short or altered after preparation)")
        return None


def _path(data_dir: Path, name: str) -> Path:
    return data_dir / INVENTORY_DIR / f"{name}.json"


def files_under(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        candidates = [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]
        found += [p for p in candidates if p.is_file() and not p.is_symlink()]
    return found


def record(data_dir: Path, name: str, source: Mapping[str, Any], files: Iterable[Path], jobs: int = 4) -> None:
    files = list(files)
    digests = hash_files(files, ALGORITHM, workers=jobs, desc=f"record {name}")
    entries = {p.relative_to(data_dir).as_posix(): [p.stat().st_size, d] for p, d in zip(files, digests, strict=True)}
    payload = {"source": dict(source), "algorithm": ALGORITHM, "files": entries}
    write_text_atomic(_path(data_dir, name), json.dumps(payload, separators=(",", ":"), sort_keys=True))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InventoryError(f"{path}: unreadable inventory ({exc}); run prepare again") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict) or data.get("algorithm") != ALGORITHM:
        raise InventoryError(f"{path}: not an inventory of {ALGORITHM} digests; run prepare again")
    return data


def source_of(data_dir: Path, name: str) -> dict[str, Any] | None:
    path = _path(data_dir, name)
    return _read(path).get("source") if path.is_file() else None


def recorded_files(data_dir: Path) -> list[RecordedFile]:
    files: list[RecordedFile] = []
    for path in sorted((data_dir / INVENTORY_DIR).glob("*.json")):
        for relative, entry in _read(path)["files"].items():
            if relative.startswith("/") or ".." in relative.split("/"):
                raise InventoryError(f"{path}: {relative!r} is outside {data_dir}")
            try:
                size, digest = entry
                files.append(RecordedFile(data_dir / relative, int(size), Checksum(ALGORITHM, str(digest))))
            except (TypeError, ValueError) as exc:
                raise InventoryError(f"{path}: {relative}: expected [size, digest], got {entry!r}") from exc
    return files
