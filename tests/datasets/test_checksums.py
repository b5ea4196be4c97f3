"""Checksums, parallel verification and stamps, on real files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from common.datasets.checksums import Checksum, ManifestChecksumError, Stamps, Status, verify_files


def write(path: Path, data: bytes) -> tuple[Path, Checksum]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, Checksum("md5", hashlib.md5(data).hexdigest())


def test_results_name_missing_and_bad_files_with_both_digests(tmp_path):
    good = write(tmp_path / "good.bin", b"good")
    bad_path, _ = write(tmp_path / "bad.bin", b"bad")
    expected_bad = Checksum("md5", hashlib.md5(b"expected").hexdigest())
    missing = (tmp_path / "missing.bin", Checksum("md5", "1" * 32))
    results = verify_files([good, (bad_path, expected_bad), missing], workers=3, show_progress=False)
    assert [r.status for r in results] == [Status.OK, Status.MISMATCH, Status.MISSING]
    assert results[1].describe() == (f"{bad_path}: checksum mismatch: expected md5:{expected_bad.hexdigest}, "
                                     f"got md5:{hashlib.md5(b'bad').hexdigest()}")
    assert results[2].describe() == f"{tmp_path / 'missing.bin'}: missing (expected md5:{'1' * 32})"


def test_stamp_skips_rehash_until_size_or_mtime_change_or_full(tmp_path):
    path, checksum = write(tmp_path / "f.bin", b"A" * 4096)
    (first,) = verify_files([(path, checksum)], Stamps(tmp_path), show_progress=False)
    assert first.status is Status.OK and not first.from_stamp

    (again,) = verify_files([(path, checksum)], Stamps(tmp_path), show_progress=False)
    assert again.status is Status.OK and again.from_stamp

    # Same size and mtime, different bytes: only --full notices (the documented trade-off).
    st = path.stat()
    path.write_bytes(b"B" * 4096)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    (stamped,) = verify_files([(path, checksum)], Stamps(tmp_path), show_progress=False)
    assert stamped.from_stamp
    (full,) = verify_files([(path, checksum)], Stamps(tmp_path), full=True, show_progress=False)
    assert full.status is Status.MISMATCH

    # A failed check drops the stamp, so the next run re-hashes too.
    (after,) = verify_files([(path, checksum)], Stamps(tmp_path), show_progress=False)
    assert after.status is Status.MISMATCH and not after.from_stamp


def test_a_touched_file_is_rehashed(tmp_path):
    path, checksum = write(tmp_path / "f.bin", b"data")
    verify_files([(path, checksum)], Stamps(tmp_path), show_progress=False)
    path.write_bytes(b"DATA")
    (result,) = verify_files([(path, checksum)], Stamps(tmp_path), show_progress=False)
    assert result.status is Status.MISMATCH and not result.from_stamp


def test_prefix_checksums_match_only_the_published_prefix(tmp_path):
    path = tmp_path / "resnet50.pth"
    path.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    ok = Checksum.from_entry({"sha256_prefix": digest[:8]}, "m")
    wrong = Checksum.from_entry({"sha256_prefix": "00000000"}, "m")
    results = verify_files([(path, ok), (path, wrong)], show_progress=False)
    assert [r.status for r in results] == [Status.OK, Status.MISMATCH]
    assert str(ok) == f"sha256:{digest[:8]}…"


@pytest.mark.parametrize("entry", [{"md5": "abc"}, {"md5": "z" * 32}, {"sha256": "0" * 32},
                                   {"sha256_prefix": "0" * 64}])
def test_malformed_digests_are_rejected_naming_the_entry(entry):
    with pytest.raises(ManifestChecksumError, match=r"manifest\.yaml: downloads\[2\]: .* is not a valid"):
        Checksum.from_entry(entry, "manifest.yaml: downloads[2]")


def test_entry_without_checksum_gives_none():
    assert Checksum.from_entry({"url": "http://x"}, "m") is None


def test_a_read_only_dataset_verifies_and_says_its_new_digests_are_not_kept(read_only_view, caplog):
    source, view = read_only_view
    write(source / "stamped.bin", b"stamped")
    _, checksum = write(source / "new.bin", b"new")
    stamped = Checksum("md5", hashlib.md5(b"stamped").hexdigest())
    verify_files([(source / "stamped.bin", stamped)], Stamps(source), show_progress=False)

    # Every stamp still holds: nothing to write, so nothing is tried (and nothing is said).
    (ok,) = verify_files([(view / "stamped.bin", stamped)], Stamps(view), show_progress=False)
    assert ok.status is Status.OK and ok.from_stamp and not caplog.records

    # A file without a stamp verifies all the same; the stamp it earned cannot be kept, and the log says so.
    (fresh,) = verify_files([(view / "new.bin", checksum)], Stamps(view), show_progress=False)
    assert fresh.status is Status.OK and not fresh.from_stamp
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"{view} is read-only" in caplog.text and "hashes those files again" in caplog.text
    (again,) = verify_files([(view / "new.bin", checksum)], Stamps(view), show_progress=False)
    assert not again.from_stamp
