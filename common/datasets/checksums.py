"""File checksums: expected digests from manifests, parallel verification, and stamps.

Hashing runs in threads: hashlib releases the GIL on large buffers, so several files hash at once
on several cores. A stamp records (size, mtime, digest) of a file that verified; while the file's
size and mtime are unchanged, verification trusts the stamp unless asked for a full re-hash.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from common.atomic import write_text_atomic

CHUNK = 1 << 20
ALGORITHMS = ("md5", "sha1", "sha256")
STAMP_FILE = ".verified.json"
# A dataset mounted read-only (a Backend.AI run mounts its dataset folder so) cannot keep new stamps.
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class ManifestChecksumError(ValueError):
    """A manifest entry names no usable checksum."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest; `prefix` when only its first hex digits are published."""

    algo: str
    hexdigest: str
    prefix: bool = False

    @classmethod
    def from_entry(cls, entry: Mapping[str, object], where: str) -> Checksum | None:
        """Read `md5`, `sha256` or `sha256_prefix` from a manifest entry (None: no checksum known)."""
        for key in (*ALGORITHMS, *(f"{a}_prefix" for a in ALGORITHMS)):
            value = entry.get(key)
            if value is None:
                continue
            algo, prefix = key.removesuffix("_prefix"), key.endswith("_prefix")
            digest = str(value).lower()
            full = hashlib.new(algo).digest_size * 2
            if not all(c in "0123456789abcdef" for c in digest) or (
                    len(digest) != full if not prefix else not 0 < len(digest) < full):
                raise ManifestChecksumError(f"{where}: {key} {value!r} is not a valid {algo} hex digest")
            return cls(algo, digest, prefix)
        return None

    def matches(self, actual: str) -> bool:
        return actual.startswith(self.hexdigest) if self.prefix else actual == self.hexdigest

    def __str__(self) -> str:
        return f"{self.algo}:{self.hexdigest}{'…' if self.prefix else ''}"


def hash_file(path: Path, algo: str, progress: Callable[[int], object] | None = None) -> str:
    h = hashlib.new(algo)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            if progress:
                progress(n)
    return h.hexdigest()


class Status(Enum):
    OK = "ok"
    MISSING = "missing"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class Result:
    path: Path
    status: Status
    expected: Checksum
    actual: str | None = None
    from_stamp: bool = False

    def describe(self) -> str:
        if self.status is Status.MISSING:
            return f"{self.path}: missing (expected {self.expected})"
        if self.status is Status.MISMATCH:
            actual = f"{self.expected.algo}:{self.actual}"
            return f"{self.path}: checksum mismatch: expected {self.expected}, got {actual}"
        return f"{self.path}: ok ({self.expected.algo}:{self.actual}{', stamp' if self.from_stamp else ''})"


class Stamps:
    """(size, mtime_ns, algo, digest) of files that verified, kept in one JSON file per directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / STAMP_FILE
        self._lock = threading.Lock()
        self._changed = False
        try:
            self._data: dict[str, dict] = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self._data = {}

    def _key(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.root.resolve()))

    def lookup(self, path: Path, algo: str) -> str | None:
        """The stamped digest when size and mtime still match, else None."""
        with self._lock:
            entry = self._data.get(self._key(path))
        if not entry or entry["algo"] != algo:
            return None
        st = path.stat()
        return entry["digest"] if [st.st_size, st.st_mtime_ns] == [entry["size"], entry["mtime_ns"]] else None

    def record(self, path: Path, algo: str, digest: str) -> None:
        st = path.stat()
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "algo": algo, "digest": digest}
        with self._lock:
            key = self._key(path)
            self._changed |= self._data.get(key) != entry
            self._data[key] = entry

    def forget(self, path: Path) -> None:
        with self._lock:
            self._changed |= self._data.pop(self._key(path), None) is not None

    def save(self) -> None:
        """Write the stamps if they changed; on a read-only dataset say that the next check re-hashes."""
        with self._lock:
            if not self._changed:
                return
            try:
                write_text_atomic(self.path, json.dumps(self._data, indent=1, sort_keys=True))
            except OSError as exc:
                if exc.errno not in READ_ONLY_ERRNOS:
                    raise
                log.warning("%s is read-only (%s): the digests computed now are not kept, the next "
                            "verification hashes those files again", self.root, exc.strerror)
                return
            self._changed = False


def verify_one(path: Path, expected: Checksum, stamps: Stamps | None = None, full: bool = False,
               progress: Callable[[int], object] | None = None) -> Result:
    if not path.is_file():
        return Result(path, Status.MISSING, expected)
    if stamps and not full and (digest := stamps.lookup(path, expected.algo)) and expected.matches(digest):
        if progress:
            progress(path.stat().st_size)
        return Result(path, Status.OK, expected, digest, from_stamp=True)
    digest = hash_file(path, expected.algo, progress)
    ok = expected.matches(digest)
    if stamps:
        if ok:
            stamps.record(path, expected.algo, digest)
        else:
            stamps.forget(path)
    return Result(path, Status.OK if ok else Status.MISMATCH, expected, digest)


def _in_parallel(work: Callable[[T, Callable[[int], object]], R], items: list[T], paths: list[Path],
                 workers: int, desc: str, show_progress: bool | None) -> list[R]:
    """`work(item, progress)` for every item on a thread pool, with one bar counting the bytes of `paths`."""
    total = sum(p.stat().st_size for p in paths if p.is_file())
    disable = None if show_progress is None else not show_progress  # None: only on a terminal
    lock = threading.Lock()
    with (
        tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=disable) as bar,
        ThreadPoolExecutor(max(1, workers)) as pool,
    ):
        def advance(n: int) -> None:
            with lock:
                bar.update(n)

        return list(pool.map(lambda item: work(item, advance), items))


def hash_files(paths: Iterable[Path], algo: str, workers: int = 4, desc: str = "hash",
               show_progress: bool | None = None) -> list[str]:
    """Hex digests of files, hashed in parallel; in the input order."""
    paths = list(paths)
    return _in_parallel(lambda p, progress: hash_file(p, algo, progress), paths, paths, workers, desc, show_progress)


def verify_files(entries: Iterable[tuple[Path, Checksum]], stamps: Stamps | None = None,
                 full: bool = False, workers: int = 4, show_progress: bool | None = None) -> list[Result]:
    """Verify files in parallel; results keep the input order. Stamps are saved at the end."""
    entries = list(entries)
    results = _in_parallel(lambda e, progress: verify_one(e[0], e[1], stamps, full, progress),
                           entries, [p for p, _ in entries], workers, "verify", show_progress)
    if stamps:
        stamps.save()
    return results
