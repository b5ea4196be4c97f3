"""The cache flush without root: the dataset's pages leave the page cache (mincore says so), nothing else does,
and `done` is true only when every file was evicted."""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from pathlib import Path

import pytest

from common.mlperf import page_cache

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]


def resident_fraction(path: Path) -> float:
    """The share of the file's pages in the page cache (mincore(2) on a private mapping of it)."""
    size = path.stat().st_size
    pages = (size + PAGE - 1) // PAGE
    with path.open("rb") as file, mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        window = (ctypes.c_char * size).from_buffer(mapped)
        try:
            vector = (ctypes.c_ubyte * pages)()
            if _libc.mincore(ctypes.addressof(window), size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(v & 1 for v in vector) / pages
        finally:
            del window


def _cached_file(path: Path, megabytes: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(megabytes << 20))
    os.sync()
    path.read_bytes()  # read back: its pages are in the cache
    return path


@pytest.fixture
def without_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """drop_caches out of reach, as in a container without root (and the machine's cache left alone)."""
    monkeypatch.setattr(page_cache, "DROP_CACHES", tmp_path / "no-proc" / "drop_caches")


@pytest.mark.usefixtures("without_root")
def test_without_root_the_datasets_pages_leave_the_cache_and_no_others(tmp_path: Path) -> None:
    dataset = tmp_path / "data"
    files = [_cached_file(dataset / "coco" / "train2017" / "a.jpg", 8), _cached_file(dataset / "weights.pkl", 4)]
    elsewhere = _cached_file(tmp_path / "elsewhere.bin", 4)
    assert all(resident_fraction(f) > 0.9 for f in [*files, elsewhere])  # the check can see cached pages

    flush = page_cache.flush_page_cache(dataset)

    assert (flush.done, flush.method, flush.files) == (True, "fadvise", 2)
    assert flush.metadata() == {"method": "fadvise", "files": 2, "seconds": round(flush.seconds, 1)}
    assert [resident_fraction(f) for f in files] == [0.0, 0.0]
    assert resident_fraction(elsewhere) > 0.9  # no privilege used: only the dataset's own pages went


@pytest.mark.usefixtures("without_root")
def test_a_file_that_cannot_be_evicted_makes_the_flush_not_done_and_is_named(tmp_path: Path) -> None:
    dataset = tmp_path / "data"
    _cached_file(dataset / "a.bin", 1)
    (dataset / "gone.bin").symlink_to(tmp_path / "missing")

    flush = page_cache.flush_page_cache(dataset)

    assert not flush.done and flush.files == 1
    assert flush.reason == f"not evicted: {dataset / 'gone.bin'}: No such file or directory"
    assert flush.metadata()["reason"] == flush.reason
    missing = page_cache.flush_page_cache(tmp_path / "nowhere")
    assert (missing.done, missing.reason) == (False, f"{tmp_path / 'nowhere'}: no such folder")


def test_with_root_on_the_host_the_whole_cache_is_dropped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Where drop_caches is writable it is written; a stand-in file receives what the kernel would."""
    stand_in = tmp_path / "drop_caches"
    stand_in.write_text("0\n")
    monkeypatch.setattr(page_cache, "DROP_CACHES", stand_in)

    flush = page_cache.flush_page_cache(tmp_path / "data")

    assert (flush.done, flush.method) == (True, "drop_caches")
    assert stand_in.read_text() == "3\n"
