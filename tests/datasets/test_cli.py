"""The dataset commands end to end: python -m ..., exit codes and messages, and the Invoke tasks."""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from object_detection import download_dataset as od_download
from object_detection import verify_dataset as od_verify
from object_detection.layout import CocoLayout
from object_detection.sample import build_split
from tests.datasets.fault_server import FaultServer
from translation import download_dataset as tr_download
from translation import verify_dataset as tr_verify
from translation.layout import Wmt16Layout
from translation.sample import build_sample as build_wmt_sample
from translation.sample import write_raw

pytestmark = pytest.mark.timeout(600)  # its slow tests

ROOT = Path(__file__).resolve().parents[2]


def zip_dir(root: Path, folder: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted((root / folder).rglob("*")):
            zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


def tgz(files: dict[str, Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, path in files.items():
            tf.add(path, name)
    return buf.getvalue()


def write_manifest(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def coco_served(server: FaultServer, tmp_path: Path) -> tuple[Path, bytes]:
    """COCO-shaped zips and a weights file on the server, and a manifest naming them."""
    staging = CocoLayout(tmp_path / "staging")
    build_split(staging, "train", 5, random.Random("train"))
    build_split(staging, "val", 3, random.Random("val"))
    weights = random.Random(9).randbytes(4096)
    entries = []
    for name, folder in (("train2017.zip", "train2017"), ("val2017.zip", "val2017"),
                         ("annotations_trainval2017.zip", "annotations")):
        data = zip_dir(staging.coco_dir, folder)
        entries.append({"path": f"downloads/{name}", "url": server.add(f"/zips/{name}", data),
                        "size": len(data), "md5": hashlib.md5(data).hexdigest(), "extract_to": "coco"})
    entries.append({"path": "weights/resnet50-0676ba61.pth", "url": server.add("/models/r50.pth", weights),
                    "size": len(weights), "sha256_prefix": hashlib.sha256(weights).hexdigest()[:8]})
    manifest = write_manifest(tmp_path / "coco.yaml", {"downloads": entries, "images": {"train": 5, "val": 3}})
    return manifest, weights


def test_coco_download_extract_verify_and_repair(server, coco_served, tmp_path, capsys):
    manifest, weights = coco_served
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--manifest", str(manifest)]
    assert od_download.main(args) == 0
    layout = CocoLayout(data)
    assert all(p.exists() for p in layout.required())
    assert len(list(layout.images_dir("train").glob("*.jpg"))) == 5
    assert od_verify.main(args) == 0

    served = len(server.state.log)
    assert od_download.main(args) == 0  # everything verified and extracted: nothing fetched again
    assert len(server.state.log) == served

    layout.weights.write_bytes(b"corrupted")
    capsys.readouterr()
    assert od_verify.main(args) == 1
    err = capsys.readouterr().err
    assert f"FAILED {layout.weights}: checksum mismatch: expected sha256:" in err
    assert f"got sha256:{hashlib.sha256(b'corrupted').hexdigest()}" in err

    assert od_download.main(args) == 0  # the bad file is fetched again
    assert layout.weights.read_bytes() == weights
    assert od_verify.main([*args, "--full"]) == 0


def test_extracted_images_cut_short_or_altered_are_named(server, coco_served, tmp_path, capsys):
    manifest, _ = coco_served
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--manifest", str(manifest)]
    assert od_download.main(args) == 0
    truncated, tampered = sorted(CocoLayout(data).images_dir("train").glob("*.jpg"))[:2]
    size = truncated.stat().st_size
    truncated.write_bytes(truncated.read_bytes()[:-100])  # an upload cut short
    original = tampered.read_bytes()
    tampered.write_bytes(original[:500] + bytes(b ^ 0xFF for b in original[500:600]) + original[600:])
    capsys.readouterr()
    assert od_verify.main(args) == 1
    err = capsys.readouterr().err
    assert f"FAILED {truncated}: {size - 100} bytes, prepare recorded {size}" in err
    assert str(tampered) not in err  # same size: only --full reads the bytes
    assert od_verify.main([*args, "--full"]) == 1
    err = capsys.readouterr().err
    assert f"FAILED {truncated}: " in err
    assert f"FAILED {tampered}: checksum mismatch: expected sha256:{hashlib.sha256(original).hexdigest()}" in err
    assert "2 problem(s) found" in err


def test_coco_download_failure_exits_1_naming_the_file(server, coco_served, tmp_path, capsys):
    manifest, _ = coco_served
    original = server.state.files["/zips/val2017.zip"]
    server.state.files["/zips/val2017.zip"] = bytes(len(original))
    code = od_download.main(["--data-dir", str(tmp_path / "d"), "--manifest", str(manifest), "--retries", "0"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: val2017.zip: checksum mismatch: expected md5:")
    assert not (tmp_path / "d" / "downloads" / "val2017.zip").exists()
    assert (tmp_path / "d" / "downloads" / "train2017.zip").is_file()


def test_escaping_archive_is_refused_by_the_command(server, tmp_path, capsys):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escaped.txt", "x")
    evil = buf.getvalue()
    manifest = write_manifest(tmp_path / "m.yaml", {"downloads": [{
        "path": "downloads/evil.zip", "url": server.add("/evil.zip", evil),
        "md5": hashlib.md5(evil).hexdigest(), "extract_to": "coco"}]})
    data = tmp_path / "data"
    assert od_download.main(["--data-dir", str(data), "--manifest", str(manifest)]) == 1
    assert "evil.zip: member '../../escaped.txt' escapes the target" in capsys.readouterr().err
    assert not (tmp_path / "escaped.txt").exists() and not (data / "escaped.txt").exists()


def test_malformed_manifest_is_reported_by_entry(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.yaml", {"downloads": [{"path": "../x", "url": "http://h/x"}]})
    assert od_download.main(["--data-dir", str(tmp_path), "--manifest", str(manifest)]) == 1
    assert f"error: {manifest}: downloads[0].path: path '../x' must stay inside --data-dir" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_gnmt_download_preprocesses_like_the_sample(server, tmp_path):
    """Archives served over HTTP go through extraction and the same preprocessing as the sample."""
    raw = write_raw(tmp_path / "raw", seed=5, train_pairs=400, test_pairs=30)
    train_tgz = tgz({f"corpus/{p.name}": p for paths in raw.train.values() for p in paths})
    dev_tgz = tgz({f"dev/{p.name}": p for p in raw.sgm.values()})
    manifest = write_manifest(tmp_path / "wmt.yaml", {
        "downloads": [
            {"path": "downloads/train.tgz", "url": server.add("/train.tgz", train_tgz),
             "md5": hashlib.md5(train_tgz).hexdigest(), "extract_to": "wmt16_de_en/raw/train"},
            {"path": "downloads/dev.tgz", "url": server.add("/dev.tgz", dev_tgz),
             "md5": hashlib.md5(dev_tgz).hexdigest(), "extract_to": "wmt16_de_en/raw/dev"}],
        "sources": {
            "train": {lang: [f"wmt16_de_en/raw/train/corpus/{p.name}" for p in raw.train[lang]]
                      for lang in ("en", "de")},
            "sgm": {name: {lang: f"wmt16_de_en/raw/dev/dev/{raw.sgm[name, lang].name}" for lang in ("en", "de")}
                    for name in ("newstest2014", "newstest2015", "newstest2016")}}})
    data = tmp_path / "data"
    assert tr_download.main(["--data-dir", str(data), "--manifest", str(manifest), "--workers", "2"]) == 0
    expected = Wmt16Layout(tmp_path / "direct")
    build_wmt_sample(expected.data_dir, seed=5, train_pairs=400, test_pairs=30, workers=1)
    got = Wmt16Layout(data)
    # The download path learnt 32000 merges, the sample 240: compare the merge-independent outputs.
    for lang in ("en", "de"):
        assert got.test_raw(lang).read_bytes() == expected.test_raw(lang).read_bytes()
        for name in ("train.tok.clean", "newstest_dev.tok.clean"):
            assert (got.root / f"{name}.{lang}").read_bytes() == (expected.root / f"{name}.{lang}").read_bytes()

    checked = [{"path": str(p.relative_to(data)), "md5": hashlib.md5(p.read_bytes()).hexdigest()}
               for p in got.required()]
    manifest_data = yaml.safe_load(manifest.read_text())
    write_manifest(manifest, {**manifest_data, "checked": checked, "test_sentences": 30})
    assert tr_verify.main(["--data-dir", str(data), "--manifest", str(manifest)]) == 0
    with got.dev("de").open("a") as f:
        f.write("extra line\n")
    assert tr_verify.main(["--data-dir", str(data), "--manifest", str(manifest), "--full"]) == 1


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.slow
def test_invoke_collections_expose_the_dataset_tasks():
    listing = invoke("--list").stdout
    for name in ("maskrcnn", "gnmt"):
        for task in ("download", "verify", "prepare"):
            assert f"{name}.{task}" in listing


@pytest.mark.slow
def test_invoke_verify_fails_on_an_empty_data_dir(tmp_path):
    result = invoke("gnmt.verify", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"FAILED {tmp_path}/wmt16_de_en/train.tok.clean.bpe.32000.en: missing" in result.stderr


@pytest.mark.slow
def test_invoke_prepare_builds_and_verifies_the_gnmt_sample(tmp_path):
    result = invoke("gnmt.prepare", "--sample", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "GNMT sample in" in result.stdout and "OK" in result.stdout
    assert all(p.is_file() for p in Wmt16Layout(tmp_path).required())
