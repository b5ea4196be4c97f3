"""Resumable, checksummed downloads of many files at once.

Each file is written to `<name>.part`; an interrupted transfer resumes with an HTTP Range request
(bytes already on disk are never fetched again), connection errors and 5xx answers are retried with
exponential backoff, and the file gets its final name only after its checksum matches. A mirror
serves the same paths under another base URL; a local directory can stand in for the network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import requests
import urllib3
from tqdm import tqdm

from common.atomic import part_path
from common.datasets.checksums import CHUNK, Checksum, Stamps, Status, verify_one

log = logging.getLogger(__name__)

MIRROR_ENV = "MLPERF_DATA_MIRROR"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(Exception):
    """A file could not be fetched; the message names the file and the reason."""


class ChecksumMismatchError(DownloadError):
    pass


class InsufficientSpaceError(DownloadError):
    pass


class DownloadFailuresError(DownloadError):
    """Several files failed; each one's error is kept."""

    def __init__(self, errors: list[DownloadError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class _RetryableError(Exception):
    pass


@dataclass(frozen=True)
class Remote:
    """One file to fetch: where from, where to, and what it must be."""

    url: str
    dest: Path
    size: int | None = None
    checksum: Checksum | None = None


def mirrored(url: str, mirror: str | None) -> str:
    """The same path (and query) under the mirror's base URL."""
    if not mirror:
        return url
    parts = urlsplit(url)
    return mirror.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1000
    return f"{n:.1f} TB"


def _part_size(dest: Path) -> int:
    part = part_path(dest)
    return part.stat().st_size if part.exists() else 0


class _NoDigest:
    """Stands in for a hash when no checksum is known: nothing to compute."""

    def update(self, data: bytes) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


def _new_hash(checksum: Checksum | None) -> hashlib._Hash | _NoDigest:
    return hashlib.new(checksum.algo) if checksum else _NoDigest()


class _RunningDigest:
    """Hashes bytes as they arrive, so a finished download needs no second pass over the file."""

    def __init__(self, checksum: Checksum | None) -> None:
        self.checksum = checksum
        self.restart()

    def restart(self) -> hashlib._Hash | _NoDigest:
        self.hash = _new_hash(self.checksum)
        self.length = 0
        return self.hash

    def catch_up(self, part: Path) -> hashlib._Hash | _NoDigest:
        """The hash of the part file so far (re-read when bytes arrived outside this digest)."""
        size = part.stat().st_size if part.exists() else 0
        if size != self.length:
            self.restart()
            if self.checksum is None:
                self.length = size
                return self.hash
            with part.open("rb") as f:
                while chunk := f.read(CHUNK):
                    self.hash.update(chunk)
                    self.length += len(chunk)
        return self.hash


class _Sink:
    """Writes and hashes received chunks on a second thread, so reading the socket never waits for
    the disk or the hash (both release the GIL on large buffers)."""

    def __init__(self, f: BinaryIO, digest: _RunningDigest) -> None:
        self._f = f
        self._digest = digest
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._f.write(chunk)
                self._digest.hash.update(chunk)
                self._digest.length += len(chunk)
            except BaseException as exc:  # handed to the reading thread by put() / close()
                self._error = exc

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def close(self) -> None:
        """Wait until every chunk handed over is on disk; raise the writer's error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class Downloader:
    """Fetches `Remote`s with a bounded pool; see the module docstring for the guarantees."""

    def __init__(self, *, mirror: str | None = None, source_dir: Path | None = None, workers: int = 4,
                 retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
                 stamps: Stamps | None = None, show_progress: bool | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.mirror = mirror
        self.source_dir = source_dir
        self.workers = max(1, workers)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.stamps = stamps
        self.disable_bars = None if show_progress is None else not show_progress
        self._sleep = sleep
        self._local = threading.local()
        self._lock = threading.Lock()
        self._total: tqdm | None = None

    # -- public ------------------------------------------------------------------------------------

    def fetch_all(self, items: Iterable[Remote]) -> list[Path]:
        """Fetch every item not already verified; raise DownloadFailuresError naming each failed file."""
        items = list(items)
        with ThreadPoolExecutor(self.workers) as pool:
            good = list(pool.map(self._already_good, items))
        todo = [i for i, ok in zip(items, good, strict=True) if not ok]
        self.check_space(todo)
        total = sum(max(0, (i.size or 0) - _part_size(i.dest)) for i in todo)
        errors: list[DownloadError] = []
        with tqdm(total=total, unit="B", unit_scale=True, desc="total", disable=self.disable_bars,
                  position=0) as bar, ThreadPoolExecutor(self.workers) as pool:
            self._total = bar
            futures = [pool.submit(self._fetch, item) for item in todo]
            for fut in futures:
                exc = fut.exception()
                if isinstance(exc, DownloadError):
                    errors.append(exc)
                elif exc is not None:
                    raise exc
        if self.stamps:
            self.stamps.save()
        if errors:
            raise DownloadFailuresError(errors)
        return [i.dest for i in items]

    def check_space(self, items: list[Remote]) -> None:
        """Refuse to start when the bytes still to fetch exceed the free space."""
        needed: dict[Path, int] = {}
        for item in items:
            have = _part_size(item.dest)
            item.dest.parent.mkdir(parents=True, exist_ok=True)
            key = Path(os.path.realpath(item.dest.parent))
            needed[key] = needed.get(key, 0) + max(0, (item.size or 0) - have)
        for folder, need in needed.items():
            free = shutil.disk_usage(folder).free
            if need > free:
                raise InsufficientSpaceError(f"{folder}: {_human(need)} to download but only {_human(free)} free")

    # -- one file ----------------------------------------------------------------------------------

    def _already_good(self, item: Remote) -> bool:
        if not item.dest.is_file():
            return False
        if item.checksum is None:
            return True
        result = verify_one(item.dest, item.checksum, self.stamps)
        if result.status is Status.OK:
            log.info("%s: already verified", item.dest)
            return True
        log.warning("%s: %s; fetching it again", item.dest, result.describe())
        return False

    def _fetch(self, item: Remote) -> Path:
        part = part_path(item.dest)
        with tqdm(total=item.size, unit="B", unit_scale=True, desc=item.dest.name, leave=False,
                  disable=self.disable_bars) as bar:
            if self.source_dir is not None:
                digest = self._copy_local(item, part, bar)
            else:
                digest = self._download(item, part, bar)
        if item.checksum and not item.checksum.matches(digest):
            part.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{item.dest.name}: checksum mismatch: expected {item.checksum}, got "
                f"{item.checksum.algo}:{digest} (from {self._origin(item)}); the partial file was removed")
        os.replace(part, item.dest)
        if self.stamps and item.checksum:
            self.stamps.record(item.dest, item.checksum.algo, digest)
        log.info("%s: done", item.dest)
        return item.dest

    def _origin(self, item: Remote) -> str:
        if self.source_dir is not None:
            return str(self.source_dir / item.dest.name)
        return mirrored(item.url, self.mirror)

    def _advance(self, bar: tqdm, n: int) -> None:
        bar.update(n)
        if self._total is not None:
            with self._lock:
                self._total.update(n)

    def _copy_local(self, item: Remote, part: Path, bar: tqdm) -> str:
        """Hard-link the local archive when it is on the same filesystem (no second copy of a
        19 GB file), else copy it; either way it is hashed before it gets its final name."""
        src = self.source_dir / item.dest.name
        if not src.is_file():
            raise DownloadError(f"{item.dest.name}: not found in --from directory ({src})")
        part.unlink(missing_ok=True)
        h = _new_hash(item.checksum)
        try:
            os.link(src, part)
        except OSError:
            with src.open("rb") as fin, part.open("wb") as fout:
                while chunk := fin.read(CHUNK):
                    fout.write(chunk)
                    h.update(chunk)
                    self._advance(bar, len(chunk))
            return h.hexdigest()
        if item.checksum is None:
            return ""
        with part.open("rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                self._advance(bar, len(chunk))
        return h.hexdigest()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _download(self, item: Remote, part: Path, bar: tqdm) -> str:
        url = mirrored(item.url, self.mirror)
        digest = _RunningDigest(item.checksum)
        attempt = 0
        while True:
            try:
                complete = self._attempt(url, item, part, bar, digest)
            except (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError,
                    _RetryableError) as exc:
                complete, reason = False, exc
            except OSError as exc:
                raise DownloadError(f"{item.dest.name}: cannot write {part}: {exc}") from exc
            else:
                have = part.stat().st_size
                reason = f"body ended after {have} of {item.size} bytes"
            if complete:
                return digest.catch_up(part).hexdigest()
            attempt += 1
            if attempt > self.retries:
                raise DownloadError(
                    f"{item.dest.name}: giving up on {url} after {self.retries} retries: {reason}; "
                    f"{part.name} is kept so the next run resumes")
            delay = self.backoff * 2 ** (attempt - 1)
            log.warning("%s: %s; retry %d/%d in %.1fs", item.dest.name, reason, attempt, self.retries, delay)
            self._sleep(delay)

    def _attempt(self, url: str, item: Remote, part: Path, bar: tqdm, digest: _RunningDigest) -> bool:
        """One request; True when the part file now holds the whole body."""
        offset = part.stat().st_size if part.exists() else 0
        if item.size is not None and offset > item.size:
            part.unlink()
            offset = 0
        if item.size is not None and offset == item.size:
            return True
        # identity: Range offsets must count the file's own bytes, not a compressed encoding's.
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
        with self._session().get(url, headers=headers, stream=True, timeout=self.timeout) as r:
            if r.status_code >= 500 or r.status_code == 429:
                raise _RetryableError(f"HTTP {r.status_code} {r.reason}")
            if r.status_code == 416 and item.size is None:
                return True
            if r.status_code >= 400:
                raise DownloadError(f"{item.dest.name}: {url} answered HTTP {r.status_code} {r.reason}")
            mode = "ab"
            if r.status_code == 206:
                match = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != offset:
                    raise DownloadError(f"{item.dest.name}: {url} sent Content-Range "
                                        f"{r.headers.get('Content-Range')!r} for a request from byte {offset}")
            elif offset:
                log.warning("%s: %s ignores Range; starting again from byte 0", item.dest.name, url)
                mode = "wb"
            if mode == "ab":
                digest.catch_up(part)
            else:
                digest.restart()
            with part.open(mode) as f:
                sink = _Sink(f, digest)
                try:
                    # read1 hands over whatever arrived, so bytes before a dropped connection are kept.
                    while chunk := r.raw.read1(CHUNK):
                        sink.put(chunk)
                        self._advance(bar, len(chunk))
                finally:
                    sink.close()
        return item.size is None or part.stat().st_size == item.size
