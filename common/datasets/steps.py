"""The steps both benchmarks' dataset commands share: download, extract, verify, and their CLI.

Each benchmark's download_dataset.py / verify_dataset.py adds what is its own (preprocessing,
structure checks, the sample) around these.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from common.datasets import inventory
from common.datasets.checksums import ManifestChecksumError, Stamps, Status, verify_files
from common.datasets.download import MIRROR_ENV, Downloader, DownloadError
from common.datasets.extract import ArchiveFormatError, UnsafeArchiveError, extract
from common.datasets.manifest import Manifest, ManifestError, load_manifest
from common.extras import MissingExtraError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "MLPERF_DATA_DIR"
DEFAULT_DATA_DIR = "data"
# Errors that end a dataset command with a message and exit status 1 (no traceback).
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    MissingExtraError, DownloadError, ManifestError, ManifestChecksumError, UnsafeArchiveError, ArchiveFormatError,
    inventory.InventoryError,
)


def add_common_args(parser: argparse.ArgumentParser, manifest: Path) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)),
                        help=f"dataset root (default: ${DATA_DIR_ENV} or ./{DEFAULT_DATA_DIR})")
    parser.add_argument("--jobs", type=int, default=4, help="files handled at once (default 4)")
    parser.add_argument("--sample", action="store_true",
                        help="the small generated sample instead of the real dataset")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.add_argument("--manifest", type=Path, default=manifest,
                        help=f"dataset manifest (default: {manifest.parent.name}/{manifest.name})")


def add_download_args(parser: argparse.ArgumentParser, manifest: Path) -> None:
    add_common_args(parser, manifest)
    parser.add_argument("--mirror", default=os.environ.get(MIRROR_ENV),
                        help=f"base URL serving the same paths as the original hosts (default: ${MIRROR_ENV})")
    parser.add_argument("--from", dest="source_dir", type=Path,
                        help="take the downloads from this directory (same file names) instead of the network")
    parser.add_argument("--retries", type=int, default=5, help="retries per file on connection errors and 5xx")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --sample generator")


def add_verify_args(parser: argparse.ArgumentParser, manifest: Path) -> None:
    add_common_args(parser, manifest)
    parser.add_argument("--full", action="store_true",
                        help="re-hash every file, the extracted and generated ones too, ignoring stamps")


def download(manifest: Manifest, data_dir: Path, args: argparse.Namespace) -> None:
    stamps = Stamps(data_dir)
    downloader = Downloader(mirror=args.mirror, source_dir=args.source_dir, workers=args.jobs,
                            retries=args.retries, stamps=stamps)
    downloader.fetch_all(manifest.remotes(data_dir))


def extract_downloads(manifest: Manifest, data_dir: Path, jobs: int = 4) -> None:
    """Extract each archive once and record the files it placed (common.datasets.inventory).

    An archive is extracted again when its size or mtime changed, or when its files were never recorded.
    """
    for entry in manifest.downloads:
        if entry.extract_to is None:
            continue
        archive = data_dir / entry.path
        st = archive.stat()
        source = {"archive": entry.path, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "target": entry.extract_to}
        if inventory.source_of(data_dir, archive.name) == source:
            log.info("%s: already extracted", archive.name)
            continue
        log.info("extract %s into %s", archive.name, entry.extract_to)
        placed = extract(archive, data_dir / entry.extract_to)
        inventory.record(data_dir, archive.name, source, inventory.files_under(placed), jobs)


def file_problems(data_dir: Path, manifest: Manifest | None, full: bool, jobs: int) -> tuple[list[str], int]:
    """(problems, files checked): the manifest's checksums, then every file prepare recorded.

    Recorded files are checked by size, and with `full` by digest too (in the same parallel pass as the
    manifest's files). Archives that were extracted may be gone; every other file must exist.
    """
    entries = []
    if manifest is not None:
        optional = {data_dir / e.path for e in manifest.downloads if e.extract_to}
        entries = [(p, c) for p, c in manifest.checksummed(data_dir) if p.is_file() or p not in optional]
    checked = len(entries)
    recorded = inventory.recorded_files(data_dir)
    sized = [(f, f.size_problem()) for f in recorded]
    if full:
        entries += [(f.path, f.checksum) for f, problem in sized if problem is None]
    results = verify_files(entries, Stamps(data_dir), full=full, workers=jobs)
    for r in results:
        log.info("%s", r.describe())
    problems = [r.describe() for r in results if r.status is not Status.OK]
    problems += [problem for _, problem in sized if problem]
    return problems, checked + len(recorded)


def report(problems: Sequence[str], checked: int, what: str) -> int:
    """Print each problem and a summary; the exit status."""
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    if problems:
        print(f"{what}: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{what}: OK ({checked} checks)")
    return 0


def verify(args: argparse.Namespace, what: str, root: Path,
           layout_problems: Callable[[object | None], tuple[list[str], int]], expected_key: str) -> int:
    """A benchmark's verify step: checksums and recorded files, then its own layout checks.

    The sample has no manifest (no published digests): its generated files are checked against what the
    generator recorded, and `layout_problems` gets None instead of the manifest's `expected_key` entry
    (expected counts).
    """
    manifest = None if args.sample else load_manifest(args.manifest)
    problems, checked = file_problems(args.data_dir, manifest, args.full, args.jobs)
    more, checks = layout_problems(manifest.extra.get(expected_key) if manifest else None)
    label = f"{what} sample in {root}" if args.sample else f"{what} data in {root}"
    return report([*problems, *more], checked + checks, label)


def run_cli(main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
            argv: Sequence[str] | None = None, errors: tuple[type[Exception], ...] = ()) -> int:
    """Parse, configure logging, run; expected errors become one message and exit status 1."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    try:
        return main(args)
    except (*EXPECTED_ERRORS, *errors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
