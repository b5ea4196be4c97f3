"""A benchmark's dataset manifest: the files to download and the files to verify, as data.

Paths in the manifest are relative to --data-dir. Each download may name a folder to extract it
into; each checked file carries its expected digest. Sizes are advisory (free-space check and
progress); the checksum alone decides whether a file is good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from common.datasets.checksums import Checksum, ManifestChecksumError
from common.datasets.download import Remote


class ManifestError(ValueError):
    """The manifest file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Entry:
    path: str
    url: str | None
    size: int | None
    checksum: Checksum | None
    extract_to: str | None = None

    def remote(self, data_dir: Path) -> Remote:
        return Remote(url=self.url or "", dest=data_dir / self.path, size=self.size, checksum=self.checksum)


@dataclass(frozen=True)
class Manifest:
    source: Path
    downloads: list[Entry]
    checked: list[Entry]
    extra: dict[str, Any] = field(default_factory=dict)

    def remotes(self, data_dir: Path) -> list[Remote]:
        return [e.remote(data_dir) for e in self.downloads]

    def checksummed(self, data_dir: Path) -> list[tuple[Path, Checksum]]:
        """Every file with a known digest: the outputs the trainer reads and the downloads."""
        return [(data_dir / e.path, e.checksum) for e in (*self.checked, *self.downloads) if e.checksum]


def _relative(source: Path, where: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{source}: {where}: expected a relative path, got {value!r}")
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts:
        raise ManifestError(f"{source}: {where}: path {value!r} must stay inside --data-dir")
    return value


def _entry(source: Path, section: str, index: int, raw: object, need_url: bool) -> Entry:
    where = f"{section}[{index}]"
    if not isinstance(raw, dict):
        raise ManifestError(f"{source}: {where}: expected a mapping, got {type(raw).__name__}")
    path = _relative(source, f"{where}.path", raw.get("path"))
    url = raw.get("url")
    if need_url and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ManifestError(f"{source}: {where} ({path}): expected an http(s) url, got {url!r}")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ManifestError(f"{source}: {where} ({path}): size must be a non-negative integer, got {size!r}")
    try:
        checksum = Checksum.from_entry(raw, f"{source}: {where} ({path})")
    except ManifestChecksumError as exc:
        raise ManifestError(str(exc)) from exc
    extract_to = raw.get("extract_to")
    if extract_to is not None:
        extract_to = _relative(source, f"{where}.extract_to", extract_to)
    return Entry(path, url, size, checksum, extract_to)


def load_manifest(source: Path) -> Manifest:
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{source}: cannot read manifest: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a mapping at the top level")
    sections = {}
    for section, need_url in (("downloads", True), ("checked", False)):
        raw = data.get(section) or []
        if not isinstance(raw, list):
            raise ManifestError(f"{source}: {section}: expected a list")
        sections[section] = [_entry(source, section, i, e, need_url) for i, e in enumerate(raw)]
    extra = {k: v for k, v in data.items() if k not in sections}
    return Manifest(source, sections["downloads"], sections["checked"], extra)
