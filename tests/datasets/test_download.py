"""Downloads against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from common.datasets.checksums import Checksum, Stamps
from common.datasets.download import (
    ChecksumMismatchError,
    Downloader,
    DownloadFailuresError,
    InsufficientSpaceError,
    Remote,
    mirrored,
)
from tests.datasets.fault_server import Fault, FaultServer


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def md5(data: bytes) -> Checksum:
    return Checksum("md5", hashlib.md5(data).hexdigest())


def remote(server: FaultServer, tmp_path: Path, name: str, data: bytes, *faults: Fault,
           checksum: Checksum | None = None, size: int | None = -1) -> Remote:
    url = server.add(f"/files/{name}", data, *faults)
    return Remote(url, tmp_path / "out" / name, len(data) if size == -1 else size,
                  checksum if checksum is not None else md5(data))


def downloader(**kwargs) -> tuple[Downloader, list[float]]:
    sleeps: list[float] = []
    kwargs.setdefault("backoff", 0.5)
    return Downloader(show_progress=False, sleep=sleeps.append, **kwargs), sleeps


def test_rerun_resumes_a_dropped_transfer_without_refetching_bytes(server, tmp_path):
    data = payload(3_000_000)
    item = remote(server, tmp_path, "a.zip", data, Fault(cut=1_234_567))
    first, _ = downloader(retries=0)
    with pytest.raises(DownloadFailuresError, match=r"a\.zip: giving up .*a\.zip\.part is kept"):
        first.fetch_all([item])
    assert not item.dest.exists()
    assert (item.dest.parent / "a.zip.part").stat().st_size == 1_234_567

    second, _ = downloader(retries=0)
    assert second.fetch_all([item]) == [item.dest]
    assert item.dest.read_bytes() == data
    log = server.requests_for("/files/a.zip")
    assert [(e.range, e.status) for e in log] == [(None, 200), ("bytes=1234567-", 206)]
    assert sum(e.sent for e in log) == len(data)  # no byte fetched twice
    assert not (item.dest.parent / "a.zip.part").exists()


def test_retries_server_errors_with_exponential_backoff(server, tmp_path):
    data = payload(100_000)
    item = remote(server, tmp_path, "b.tgz", data, Fault(status=500), Fault(status=503), Fault(cut=10))
    dl, sleeps = downloader(retries=4)
    dl.fetch_all([item])
    assert item.dest.read_bytes() == data
    assert [e.status for e in server.requests_for("/files/b.tgz")] == [500, 503, 200, 206]
    assert sleeps == [0.5, 1.0, 2.0]


def test_gives_up_after_the_retries_and_names_the_file(server, tmp_path):
    item = remote(server, tmp_path, "c.zip", payload(1000), *[Fault(status=502)] * 3)
    dl, sleeps = downloader(retries=2)
    with pytest.raises(DownloadFailuresError, match=r"c\.zip: giving up on http://127\.0\.0\.1:\d+/files/c\.zip "
                                                    r"after 2 retries: HTTP 502"):
        dl.fetch_all([item])
    assert not item.dest.exists()
    assert len(sleeps) == 2


def test_client_errors_are_not_retried(server, tmp_path):
    item = Remote(server.url("/files/absent.zip"), tmp_path / "absent.zip", 10, None)
    dl, sleeps = downloader(retries=5)
    with pytest.raises(DownloadFailuresError, match=r"absent\.zip: .* answered HTTP 404"):
        dl.fetch_all([item])
    assert sleeps == []
    assert len(server.requests_for("/files/absent.zip")) == 1


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    server.state.support_range = False
    data = payload(500_000)
    item = remote(server, tmp_path, "d.zip", data, Fault(cut=200_000))
    dl, _ = downloader(retries=2)
    dl.fetch_all([item])
    assert item.dest.read_bytes() == data
    log = server.requests_for("/files/d.zip")
    assert [(e.range, e.status, e.sent) for e in log] == [(None, 200, 200_000), ("bytes=200000-", 200, 500_000)]


def test_truncated_body_is_never_renamed_into_place(server, tmp_path):
    data = payload(50_000)
    truncated = [Fault(cut=10_000, honest_length=True)] * 3
    item = remote(server, tmp_path, "e.zip", data, *truncated)
    dl, _ = downloader(retries=2)
    with pytest.raises(DownloadFailuresError, match=r"e\.zip: .*body ended after 30000 of 50000 bytes"):
        dl.fetch_all([item])
    assert not item.dest.exists()


def test_truncated_body_of_unknown_size_fails_its_checksum_and_is_removed(server, tmp_path):
    data = payload(50_000)
    item = remote(server, tmp_path, "f.zip", data, Fault(cut=20_000, honest_length=True), size=None)
    dl, _ = downloader(retries=0)
    with pytest.raises(DownloadFailuresError) as err:
        dl.fetch_all([item])
    (failure,) = err.value.errors
    assert isinstance(failure, ChecksumMismatchError)
    assert f"expected md5:{hashlib.md5(data).hexdigest()}" in str(failure)
    assert f"got md5:{hashlib.md5(data[:20_000]).hexdigest()}" in str(failure)
    assert not item.dest.exists() and not (item.dest.parent / "f.zip.part").exists()


def test_checksum_mismatch_fails_that_file_only(server, tmp_path):
    good = remote(server, tmp_path, "good.zip", payload(10_000, 1))
    bad = remote(server, tmp_path, "bad.zip", payload(10_000, 2), checksum=Checksum("md5", "0" * 32))
    dl, _ = downloader(retries=0)
    with pytest.raises(DownloadFailuresError) as err:
        dl.fetch_all([good, bad])
    assert [type(e) for e in err.value.errors] == [ChecksumMismatchError]
    assert "bad.zip: checksum mismatch: expected md5:" + "0" * 32 in str(err.value)
    assert good.dest.read_bytes() == payload(10_000, 1)
    assert not bad.dest.exists()


def test_verified_files_are_skipped_on_the_next_run(server, tmp_path):
    items = [remote(server, tmp_path, f"{n}.bin", payload(5000, n)) for n in range(3)]
    stamps = Stamps(tmp_path / "out")
    downloader(stamps=stamps)[0].fetch_all(items)
    requests_before = len(server.state.log)
    downloader(stamps=Stamps(tmp_path / "out"))[0].fetch_all(items)
    assert len(server.state.log) == requests_before


def test_a_corrupted_existing_file_is_fetched_again(server, tmp_path):
    data = payload(5000)
    item = remote(server, tmp_path, "g.bin", data)
    item.dest.parent.mkdir(parents=True)
    item.dest.write_bytes(b"x" * 5000)
    downloader()[0].fetch_all([item])
    assert item.dest.read_bytes() == data


def test_pool_is_bounded(server, tmp_path):
    server.state.gather = 2  # the first requests wait for each other: two workers are two in flight
    items = [remote(server, tmp_path, f"{n}.bin", payload(1000, n)) for n in range(6)]
    downloader(workers=2)[0].fetch_all(items)
    assert server.state.max_active == 2
    assert all(i.dest.read_bytes() == payload(1000, n) for n, i in enumerate(items))


def test_mirror_serves_the_same_paths(server, tmp_path):
    data = payload(2000)
    server.add("/zips/train2017.zip", data)
    item = Remote("http://images.cocodataset.invalid/zips/train2017.zip", tmp_path / "t.zip", 2000, md5(data))
    assert mirrored(item.url, server.base_url + "/") == server.url("/zips/train2017.zip")
    downloader(mirror=server.base_url)[0].fetch_all([item])
    assert item.dest.read_bytes() == data


def test_from_dir_takes_local_archives_and_checks_them(tmp_path):
    source = tmp_path / "archives"
    source.mkdir()
    (source / "h.zip").write_bytes(b"local archive")
    (source / "i.zip").write_bytes(b"wrong content")
    ok = Remote("http://unreachable.invalid/h.zip", tmp_path / "out" / "h.zip", 13, md5(b"local archive"))
    bad = Remote("http://unreachable.invalid/i.zip", tmp_path / "out" / "i.zip", 13, md5(b"right content"))
    missing = Remote("http://unreachable.invalid/j.zip", tmp_path / "out" / "j.zip", 1, None)
    with pytest.raises(DownloadFailuresError) as err:
        downloader(source_dir=source)[0].fetch_all([ok, bad, missing])
    text = str(err.value)
    assert f"i.zip: checksum mismatch: expected md5:{hashlib.md5(b'right content').hexdigest()}" in text
    assert f"(from {source / 'i.zip'})" in text
    assert f"j.zip: not found in --from directory ({source / 'j.zip'})" in text
    assert ok.dest.read_bytes() == b"local archive"
    assert ok.dest.stat().st_ino == (source / "h.zip").stat().st_ino  # linked, not copied
    assert sorted(p.name for p in ok.dest.parent.iterdir()) == ["h.zip"]
    assert (source / "i.zip").read_bytes() == b"wrong content"  # a rejected source is left alone


def test_free_space_is_checked_before_any_request(server, tmp_path, small_tmpfs):
    keep = small_tmpfs / "already-there.txt"
    keep.write_bytes(b"keep me")
    big = Remote(server.add("/files/big.zip", b""), small_tmpfs / "big.zip", 5 * 2**20, None)
    with pytest.raises(InsufficientSpaceError, match=rf"{small_tmpfs}: 5\.2 MB to download but only 2\.\d MB free"):
        downloader()[0].fetch_all([big])
    assert server.state.log == []
    assert keep.read_bytes() == b"keep me"


def test_a_disk_filling_up_mid_download_fails_cleanly(server, tmp_path, small_tmpfs):
    keep = small_tmpfs / "already-there.txt"
    keep.write_bytes(b"keep me")
    data = payload(4 * 2**20)
    item = remote(server, small_tmpfs, "huge.bin", data, size=None)
    with pytest.raises(DownloadFailuresError, match=r"huge\.bin: cannot write .*huge\.bin\.part: .*No space left"):
        downloader(retries=0)[0].fetch_all([item])
    assert not item.dest.exists()
    assert keep.read_bytes() == b"keep me"
    assert not [p for p in os.listdir(item.dest.parent) if p == "huge.bin"]


def test_from_dir_on_another_filesystem_is_copied(tmp_path, small_tmpfs):
    source = tmp_path / "archives"
    source.mkdir()
    data = payload(100_000)
    (source / "l.zip").write_bytes(data)
    item = Remote("http://unreachable.invalid/l.zip", small_tmpfs / "l.zip", len(data), md5(data))
    downloader(source_dir=source)[0].fetch_all([item])
    assert item.dest.read_bytes() == data
    assert item.dest.stat().st_dev != (source / "l.zip").stat().st_dev
