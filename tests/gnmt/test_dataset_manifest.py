"""The GNMT manifest: every archive carries a published digest, and sha1 (gluon-nlp's) is one verify checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from common.datasets.checksums import Checksum, Status, verify_one
from common.datasets.manifest import load_manifest
from translation.verify_dataset import MANIFEST


def test_every_archive_and_every_trainer_file_has_a_digest() -> None:
    manifest = load_manifest(MANIFEST)
    assert len(manifest.downloads) == 5 and len(manifest.checked) == 7
    assert all(entry.checksum is not None for entry in (*manifest.downloads, *manifest.checked))
    assert {e.checksum.algo for e in manifest.downloads} == {"md5", "sha1", "sha256"}


def test_a_sha1_entry_is_verified(tmp_path: Path) -> None:
    archive = tmp_path / "de-en.tgz"
    archive.write_bytes(b"europarl")
    good = Checksum.from_entry({"sha1": hashlib.sha1(b"europarl").hexdigest()}, "test")
    bad = Checksum.from_entry({"sha1": hashlib.sha1(b"other").hexdigest()}, "test")
    assert verify_one(archive, good).status is Status.OK
    assert verify_one(archive, bad).status is Status.MISMATCH
