"""Datasets as MLCommons publishes them for the current benchmarks: bundles behind its R2 downloader.

MLCommons' references document their data as `mlc-r2-downloader.sh -d DIR <bundle>.uri`: the bundle's metadata
URL (`.../metadata/<bundle>.uri`) holds the base URL of its files, and `<bundle>.md5` beside it lists every file
with its md5. This module does the same with the project's download machinery (common.datasets.download:
resumable with HTTP Range, retried, verified before a file gets its name): the metadata first, then the files
the manifest names, each against the publisher's md5 and the size the manifest records. The md5 lists are kept
in the data folder (as the downloader keeps them), so `verify` checks the files against them later.

A manifest (YAML) names the bundles:

    bundles:
      - name: llama-3-1-8b-preprocessed-c4-dataset
        uri: https://training.mlcommons-storage.org/metadata/llama-3-1-8b-preprocessed-c4-dataset.uri
        into: 8b                       # folder under --data-dir
        md5_list_size: 389             # optional: the list's published size
        files: {c4-train.en_6_text_document.bin: 83976774280, ...}   # what is kept, with sizes (null: all listed)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from common.datasets.checksums import Checksum, Stamps, Status, verify_files
from common.datasets.download import Downloader, DownloadError, Remote
from common.datasets.manifest import ManifestError

METADATA_DIR = ".mlperf-r2"
_MD5_LINE = re.compile(r"^(?P<md5>[0-9a-fA-F]{32})\s+\*?(?P<name>\S.*?)\s*$")


@dataclass(frozen=True)
class Bundle:
    name: str
    uri: str
    into: str
    files: dict[str, int | None] | None
    md5_list_size: int | None = None

    @property
    def md5_list_url(self) -> str:
        """`<bundle>.md5` beside the `.uri`, as the R2 downloader finds it."""
        return f"{self.uri.rsplit('/', 1)[0]}/{self.name}.md5"

    def md5_list(self, data_dir: Path) -> Path:
        return data_dir / self.into / f"{self.name}.md5"


def load_bundles(source: Path) -> list[Bundle]:
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ManifestError(f"{source}: cannot read manifest: {error}") from error
    raw = document.get("bundles") if isinstance(document, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ManifestError(f"{source}: expected a non-empty `bundles:` list")
    bundles = []
    for index, entry in enumerate(raw):
        where = f"{source}: bundles[{index}]"
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "uri", "into")):
            raise ManifestError(f"{where}: expected name, uri and into")
        if not entry["uri"].startswith(("http://", "https://")) or not entry["uri"].endswith(f"/{entry['name']}.uri"):
            raise ManifestError(f"{where}: uri must be an http(s) URL ending in /{entry['name']}.uri")
        into = PurePosixPath(entry["into"])
        if into.is_absolute() or ".." in into.parts:
            raise ManifestError(f"{where}: into {entry['into']!r} must stay inside --data-dir")
        files = entry.get("files")
        if files is not None and not (isinstance(files, dict) and all(
                isinstance(size, int | None) for size in files.values())):
            raise ManifestError(f"{where}: files must map names to sizes in bytes (or null)")
        bundles.append(Bundle(entry["name"], entry["uri"], entry["into"], files, entry.get("md5_list_size")))
    return bundles


def parse_md5_list(path: Path) -> dict[str, str]:
    """`md5  name` lines (md5sum's format) into {name: md5}."""
    listed = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _MD5_LINE.match(line)
        if not match:
            raise DownloadError(f"{path}: line {number} is not `<md5>  <file>`: {line[:80]!r}")
        listed[match["name"].removeprefix("./")] = match["md5"].lower()
    return listed


def wanted(bundle: Bundle, listed: dict[str, str], where: Path) -> dict[str, tuple[str, int | None]]:
    """{name: (md5, size)} of the files to keep; a file the manifest names but the list does not is an error."""
    names = list(bundle.files) if bundle.files is not None else [n for n in listed if n != f"{bundle.name}.md5"]
    missing = [name for name in names if name not in listed]
    if missing:
        raise DownloadError(f"{where} does not list {', '.join(missing)} (the manifest expects them)")
    return {name: (listed[name], (bundle.files or {}).get(name)) for name in names}


def download(bundles: list[Bundle], data_dir: Path, *, mirror: str | None = None, source_dir: Path | None = None,
             jobs: int = 4, retries: int = 5) -> None:
    stamps = Stamps(data_dir)
    downloader = Downloader(mirror=mirror, source_dir=source_dir, workers=jobs, retries=retries, stamps=stamps)
    metadata = [Remote(b.uri, data_dir / METADATA_DIR / f"{b.name}.uri") for b in bundles]
    metadata += [Remote(b.md5_list_url, b.md5_list(data_dir), b.md5_list_size) for b in bundles]
    downloader.fetch_all(metadata)
    remotes = []
    for bundle in bundles:
        base = (data_dir / METADATA_DIR / f"{bundle.name}.uri").read_text(encoding="utf-8").strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise DownloadError(f"{bundle.uri} names {base[:80]!r}, not the base URL of the bundle's files")
        listed = parse_md5_list(bundle.md5_list(data_dir))
        for name, (md5, size) in wanted(bundle, listed, bundle.md5_list(data_dir)).items():
            remotes.append(Remote(f"{base}/{name}", data_dir / bundle.into / name, size, Checksum("md5", md5)))
    downloader.fetch_all(remotes)


def problems(bundles: list[Bundle], data_dir: Path, *, full: bool = False, jobs: int = 4) -> tuple[list[str], int]:
    """(problems, files checked): every kept file against the publisher's md5 list in the folder, and its size."""
    found: list[str] = []
    entries = []
    for bundle in bundles:
        md5_list = bundle.md5_list(data_dir)
        if not md5_list.is_file():
            found.append(f"{md5_list}: missing (the bundle's md5 list; run download first)")
            continue
        try:
            files = wanted(bundle, parse_md5_list(md5_list), md5_list)
        except DownloadError as error:
            found.append(str(error))
            continue
        for name, (md5, size) in files.items():
            path = data_dir / bundle.into / name
            if size is not None and path.is_file() and path.stat().st_size != size:
                found.append(f"{path}: {path.stat().st_size} bytes, expected {size}")
            entries.append((path, Checksum("md5", md5)))
    results = verify_files(entries, Stamps(data_dir), full=full, workers=jobs)
    found += [r.describe() for r in results if r.status is not Status.OK]
    return found, len(entries)
