"""Safe extraction: archives built here, including hostile ones."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from common.datasets.extract import ArchiveFormatError, UnsafeArchiveError, extract


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def make_tar(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None,
             hardlinks: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for kind, links in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in (links or {}).items():
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = target
                tf.addfile(info)
    return path


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_zip_extracts_into_target_and_merges_with_earlier_archives(tmp_path):
    target = tmp_path / "coco"
    extract(make_zip(tmp_path / "val.zip", {"val2017/1.jpg": b"v"}), target)
    placed = extract(make_zip(tmp_path / "ann.zip", {"annotations/instances_val2017.json": b"{}"}), target)
    assert placed == [target / "annotations"]
    assert tree(target) == ["annotations", "annotations/instances_val2017.json", "val2017", "val2017/1.jpg"]


def test_re_extraction_replaces_the_earlier_tree(tmp_path):
    target = tmp_path / "t"
    extract(make_tar(tmp_path / "a.tgz", {"d/old.txt": b"1"}), target)
    extract(make_tar(tmp_path / "b.tgz", {"d/new.txt": b"2"}), target)
    assert tree(target) == ["d", "d/new.txt"]


def test_tar_links_inside_the_target_are_kept(tmp_path):
    target = tmp_path / "t"
    extract(make_tar(tmp_path / "a.tgz", {"d/file.txt": b"x"}, symlinks={"d/link": "file.txt"}), target)
    assert os.readlink(target / "d" / "link") == "file.txt"
    assert (target / "d" / "link").read_bytes() == b"x"


@pytest.mark.parametrize(("members", "message"), [
    ({"../evil.txt": b"x"}, r"member '\.\./evil\.txt' escapes the target"),
    ({"ok/../../evil.txt": b"x"}, r"member 'ok/\.\./\.\./evil\.txt' escapes the target"),
    ({"/tmp/evil.txt": b"x"}, r"member '/tmp/evil\.txt' has an absolute path"),
])
def test_zip_slip_is_refused_before_anything_is_written(tmp_path, members, message):
    target = tmp_path / "t"
    archive = make_zip(tmp_path / "evil.zip", {"fine.txt": b"fine", **members})
    with pytest.raises(UnsafeArchiveError, match=rf"evil\.zip: {message}"):
        extract(archive, target)
    assert tree(target) == []
    assert tree(tmp_path) == ["evil.zip", "t"]


@pytest.mark.parametrize(("symlinks", "message"), [
    ({"link": "../outside"}, r"link 'link' points outside the target \('\.\./outside'\)"),
    ({"d/link": "../../outside"}, r"link 'd/link' points outside the target"),
    ({"link": "/etc"}, r"link 'link' points to absolute path '/etc'"),
])
def test_tar_symlink_escape_is_refused(tmp_path, symlinks, message):
    target = tmp_path / "t"
    archive = make_tar(tmp_path / "evil.tgz", {"d/fine.txt": b"fine"}, symlinks=symlinks)
    with pytest.raises(UnsafeArchiveError, match=message):
        extract(archive, target)
    assert tree(target) == []
    assert not (tmp_path / "outside").exists()


def test_tar_write_through_an_escaping_link_is_refused(tmp_path):
    """A link to '..' followed by a file under it would write outside the target."""
    outside = tmp_path / "victim.txt"
    archive = make_tar(tmp_path / "evil.tgz", {"up/victim.txt": b"owned"}, symlinks={"up": ".."})
    with pytest.raises(UnsafeArchiveError):
        extract(archive, tmp_path / "t")
    assert not outside.exists()


def test_tar_hardlink_escape_is_refused(tmp_path):
    archive = make_tar(tmp_path / "evil.tgz", {}, hardlinks={"passwd": "../../etc/passwd"})
    with pytest.raises(UnsafeArchiveError, match=r"member '\.\./\.\./etc/passwd' escapes"):
        extract(archive, tmp_path / "t")


def test_zip_symlink_escape_is_refused(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {}, symlinks={"link": "../../outside"})
    with pytest.raises(UnsafeArchiveError, match="points outside the target"):
        extract(archive, tmp_path / "t")


def test_corrupt_archives_are_reported_by_name(tmp_path):
    good = make_tar(tmp_path / "cut.tgz", {"d/a.bin": os.urandom(200_000)})
    (tmp_path / "cut.tgz").write_bytes(good.read_bytes()[:50_000])
    (tmp_path / "junk.zip").write_bytes(b"this is not an archive")
    with pytest.raises(ArchiveFormatError, match=r"cut\.tgz: corrupt archive"):
        extract(tmp_path / "cut.tgz", tmp_path / "t")
    with pytest.raises(ArchiveFormatError, match=r"junk\.zip: not a zip or tar archive"):
        extract(tmp_path / "junk.zip", tmp_path / "t")
    assert tree(tmp_path / "t") == []
