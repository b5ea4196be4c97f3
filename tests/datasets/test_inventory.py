"""Recorded files: what prepare extracted or generated is checked by size, and by digest with --full."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from common.datasets import inventory
from common.datasets.manifest import load_manifest
from common.datasets.steps import extract_downloads, file_problems
from tests.datasets.test_extract import make_tar, make_zip


def _manifest(tmp_path: Path, archives: dict[str, str]) -> Path:
    entries = "".join(f"  - path: {name}\n    url: http://h/{name}\n    extract_to: {target}\n"
                      for name, target in archives.items())
    path = tmp_path / "manifest.yaml"
    path.write_text(f"downloads:\n{entries}")
    return path


@pytest.fixture
def extracted(tmp_path: Path) -> Path:
    """A data folder with a zip and a tar extracted the way prepare does it."""
    data = tmp_path / "data"
    data.mkdir()
    make_zip(data / "images.zip", {"images/a.jpg": b"A" * 300, "images/sub/b.jpg": b"B" * 200})
    make_tar(data / "texts.tgz", {"raw/t.txt": b"text\n"}, symlinks={"raw/link": "t.txt"})
    extract_downloads(load_manifest(_manifest(tmp_path, {"images.zip": "coco", "texts.tgz": "wmt"})), data, jobs=2)
    return data


def test_extraction_records_every_regular_file_with_size_and_sha256(extracted: Path) -> None:
    files = {f.path.relative_to(extracted).as_posix(): f for f in inventory.recorded_files(extracted)}
    assert sorted(files) == ["coco/images/a.jpg", "coco/images/sub/b.jpg", "wmt/raw/t.txt"]  # no symlink
    assert files["coco/images/a.jpg"].size == 300
    assert files["coco/images/a.jpg"].checksum.hexdigest == hashlib.sha256(b"A" * 300).hexdigest()
    assert inventory.source_of(extracted, "images.zip")["target"] == "coco"
    assert file_problems(extracted, None, full=True, jobs=2) == ([], 3)


def test_a_cut_short_file_is_named_by_size_and_an_altered_one_by_full(extracted: Path) -> None:
    short, altered = extracted / "coco/images/a.jpg", extracted / "coco/images/sub/b.jpg"
    short.write_bytes(b"A" * 100)
    altered.write_bytes(b"X" * 200)
    problems, _ = file_problems(extracted, None, full=False, jobs=2)
    assert problems == [f"{short}: 100 bytes, prepare recorded 300 (cut short or altered after preparation)"]
    problems, _ = file_problems(extracted, None, full=True, jobs=2)
    assert sorted(problems) == sorted([
        f"{altered}: checksum mismatch: expected sha256:{hashlib.sha256(b'B' * 200).hexdigest()}, "
        f"got sha256:{hashlib.sha256(b'X' * 200).hexdigest()}",
        f"{short}: 100 bytes, prepare recorded 300 (cut short or altered after preparation)"])
    (extracted / "wmt/raw/t.txt").unlink()
    assert f"{extracted / 'wmt/raw/t.txt'}: missing (prepare recorded 5 bytes)" in \
        file_problems(extracted, None, full=False, jobs=2)[0]


def test_an_archive_is_extracted_again_when_it_changed_or_its_files_were_never_recorded(
        extracted: Path, tmp_path: Path) -> None:
    manifest = load_manifest(_manifest(tmp_path, {"images.zip": "coco", "texts.tgz": "wmt"}))
    (extracted / "coco/images/a.jpg").write_bytes(b"damaged")
    extract_downloads(manifest, extracted)  # unchanged archives: nothing extracted again
    assert (extracted / "coco/images/a.jpg").read_bytes() == b"damaged"

    make_zip(extracted / "images.zip", {"images/a.jpg": b"new"})
    os.utime(extracted / "images.zip", ns=(1, 1))
    (extracted / inventory.INVENTORY_DIR / "texts.tgz.json").unlink()
    (extracted / "wmt/raw/t.txt").write_bytes(b"damaged")
    extract_downloads(manifest, extracted)
    assert (extracted / "coco/images/a.jpg").read_bytes() == b"new"
    assert (extracted / "wmt/raw/t.txt").read_bytes() == b"text\n"
    assert file_problems(extracted, None, full=True, jobs=2) == ([], 2)


@pytest.mark.parametrize("payload", ["{not json", json.dumps({"files": {}}),
                                     json.dumps({"algorithm": "sha256", "files": {"x": 3}}),
                                     json.dumps({"algorithm": "sha256", "files": {"../x": [1, "00"]}})])
def test_a_damaged_inventory_is_named(tmp_path: Path, payload: str) -> None:
    path = tmp_path / inventory.INVENTORY_DIR / "broken.zip.json"
    path.parent.mkdir()
    path.write_text(payload)
    with pytest.raises(inventory.InventoryError, match=str(path)):
        inventory.recorded_files(tmp_path)
