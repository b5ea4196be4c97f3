"""Safe extraction of zip and tar archives.

Every member is checked before anything is written: absolute names, `..` components and links that
resolve outside the target are refused with the member's name. Extraction goes into a temporary
folder next to the target; each top-level entry is renamed into the target only when the whole
archive has been written, so an interrupted extraction never leaves a partial tree in place.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath


class UnsafeArchiveError(Exception):
    """An archive member would land outside the target directory."""


class ArchiveFormatError(Exception):
    """The file is neither a zip nor a tar archive, or is corrupt."""


def _check_name(archive: Path, name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (p.parts and ":" in p.parts[0]):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in p.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the target with '..'")
    return p


def _check_link(archive: Path, name: PurePosixPath, target: str) -> None:
    """A link inside the archive must resolve to a path inside the target."""
    if target.startswith("/"):
        raise UnsafeArchiveError(f"{archive}: link {str(name)!r} points to absolute path {target!r}")
    depth = 0
    for part in [*name.parent.parts, *PurePosixPath(target).parts]:
        depth = depth - 1 if part == ".." else depth + (part not in ("", "."))
        if depth < 0:
            raise UnsafeArchiveError(f"{archive}: link {str(name)!r} points outside the target ({target!r})")


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        name = _check_name(archive, info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            _check_link(archive, name, zf.read(info).decode("utf-8", "replace"))


def _check_tar(archive: Path, tf: tarfile.TarFile) -> None:
    for member in tf.getmembers():
        name = _check_name(archive, member.name)
        if member.issym():
            _check_link(archive, name, member.linkname)
        elif member.islnk():
            _check_name(archive, member.linkname)
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or fifo")


def _open_and_extract(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_zip(archive, zf)
            zf.extractall(into)
        return
    try:
        with tarfile.open(archive) as tf:
            _check_tar(archive, tf)
            tf.extractall(into, filter="data")
    except tarfile.ReadError as exc:
        raise ArchiveFormatError(f"{archive}: not a zip or tar archive ({exc})") from exc


def extract(archive: Path, target: Path) -> list[Path]:
    """Extract `archive` into `target`; returns the top-level paths it placed there."""
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".extracting", dir=target))
    placed: list[Path] = []
    try:
        try:
            _open_and_extract(archive, staging)
        except (zipfile.BadZipFile, EOFError, tarfile.TarError) as exc:
            raise ArchiveFormatError(f"{archive}: corrupt archive ({exc})") from exc
        for entry in sorted(staging.iterdir()):
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(entry, dest)
            placed.append(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return placed
