"""Llama 3.1 8B's data the way its reference documents it (MLCommons' R2 bundles: a .uri naming the base URL, an
.md5 list beside it), downloaded with the project's machinery from a local HTTP server: resumed after a dropped
connection, verified against the publisher's md5s, laid out as the implementations mount it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.datasets.download import DownloadFailuresError
from implementations import bundles
from implementations.llama31_8b import download as llama_download
from implementations.llama31_8b import verify as llama_verify
from tests.conftest import REPO_ROOT
from tests.datasets.fault_server import Fault, FaultServer

# Published sizes of the files NVIDIA's v5.1 implementation checks before a run (expected-mounts-8b.csv).
EXPECTED_MOUNTS_8B = {
    "8b/LICENSE.txt": 20591, "8b/NOTICE.txt": 620, "8b/c4-train.en_6_text_document.bin": 83976774280,
    "8b/c4-train.en_6_text_document.idx": 912172262, "8b/c4-validation-91205-samples.en_text_document.bin": 166568364,
    "8b/c4-validation-91205-samples.en_text_document.idx": 1824142, "8b/llama-3-1-8b-preprocessed-c4-dataset.md5": 389,
    "8b/tokenizer/LICENSE": 7627, "8b/tokenizer/README.md": 40883, "8b/tokenizer/USE_POLICY.md": 4691,
    "8b/tokenizer/llama-3-1-8b-tokenizer.md5": 908, "8b/tokenizer/special_tokens_map.json": 73,
    "8b/tokenizer/tokenizer.json": 9085658, "8b/tokenizer/tokenizer_config.json": 50500,
}


def test_the_manifest_names_mlcommons_bundles_and_the_layout_the_implementations_mount() -> None:
    found = bundles.load_bundles(llama_download.MANIFEST)
    assert [(b.uri, b.md5_list_url) for b in found] == [
        ("https://training.mlcommons-storage.org/metadata/llama-3-1-8b-preprocessed-c4-dataset.uri",
         "https://training.mlcommons-storage.org/metadata/llama-3-1-8b-preprocessed-c4-dataset.md5"),
        ("https://training.mlcommons-storage.org/metadata/llama-3-1-8b-tokenizer.uri",
         "https://training.mlcommons-storage.org/metadata/llama-3-1-8b-tokenizer.md5")]
    laid_out = {f"{b.into}/{name}": size for b in found for name, size in (b.files or {}).items()}
    laid_out.update({f"{b.into}/{b.name}.md5": b.md5_list_size for b in found})
    assert laid_out == EXPECTED_MOUNTS_8B


def serve_bundles(server: FaultServer, tmp_path: Path, files: dict[str, dict[str, bytes]], *faults: Fault) -> Path:
    """Each bundle as MLCommons serves it (metadata/<name>.uri and .md5, files under a base URL); a manifest."""
    entries = []
    for name, contents in files.items():
        base = server.url(f"/data/{name}")
        md5_list = "".join(f"{hashlib.md5(data).hexdigest()}  {file}\n" for file, data in contents.items())
        md5_list += f"{'0' * 32}  model-00001-of-00004.safetensors\n"  # listed, but not kept: never fetched
        server.add(f"/metadata/{name}.uri", base.encode())
        server.add(f"/metadata/{name}.md5", md5_list.encode())
        for file, data in contents.items():
            server.add(f"/data/{name}/{file}", data, *(faults if file.endswith(".bin") else ()))
        entries.append({"name": name, "uri": server.url(f"/metadata/{name}.uri"), "into": f"8b/{name}",
                        "files": {file: len(data) for file, data in contents.items()}})
    manifest = tmp_path / "bundles.yaml"
    manifest.write_text(yaml.safe_dump({"bundles": entries}))
    return manifest


@pytest.fixture
def server() -> FaultServer:
    srv = FaultServer().start()
    yield srv
    srv.stop()


def test_download_resumes_a_dropped_file_verifies_it_and_keeps_the_lists(server: FaultServer, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096
    manifest = serve_bundles(server, tmp_path, {"c4": {"train.bin": payload, "LICENSE.txt": b"license\n"}},
                             Fault(cut=300_000))
    data = tmp_path / "data"
    assert llama_download.main(["--data-dir", str(data), "--manifest", str(manifest), "--jobs", "2"]) == 0
    assert (data / "8b/c4/train.bin").read_bytes() == payload
    ranges = [entry.range for entry in server.requests_for("/data/c4/train.bin")]
    assert ranges == [None, "bytes=300000-"]  # resumed where the connection dropped, not fetched again
    assert (data / "8b/c4/c4.md5").is_file() and not (data / "8b/c4/model-00001-of-00004.safetensors").exists()
    assert server.requests_for("/data/c4/model-00001-of-00004.safetensors") == []
    assert llama_verify.main(["--data-dir", str(data), "--manifest", str(manifest)]) == 0
    (data / "8b/c4/train.bin").write_bytes(payload[:-1] + b"x")
    assert llama_verify.main(["--data-dir", str(data), "--manifest", str(manifest), "--full"]) == 1


def test_verify_names_a_file_cut_short_with_both_sizes(server: FaultServer, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    manifest = serve_bundles(server, tmp_path, {"c4": {"train.bin": b"x" * 5000}})
    data = tmp_path / "data"
    bundles.download(bundles.load_bundles(manifest), data)
    (data / "8b/c4/train.bin").write_bytes(b"x" * 1000)
    assert llama_verify.main(["--data-dir", str(data), "--manifest", str(manifest)]) == 1
    assert f"{data / '8b/c4/train.bin'}: 1000 bytes, expected 5000" in capsys.readouterr().err


def test_a_file_that_is_not_what_the_publisher_listed_is_refused(server: FaultServer, tmp_path: Path) -> None:
    manifest = serve_bundles(server, tmp_path, {"tok": {"tokenizer.json": b"{}"}})
    server.add("/data/tok/tokenizer.json", b"[]")  # the server now serves other bytes than the list's md5
    with pytest.raises(DownloadFailuresError, match=r"tokenizer.json: checksum mismatch: expected md5:"):
        bundles.download(bundles.load_bundles(manifest), tmp_path / "data")
    assert not (tmp_path / "data/8b/tok/tokenizer.json").exists()


def test_a_file_the_manifest_expects_but_the_list_does_not_name_is_an_error(server: FaultServer,
                                                                            tmp_path: Path) -> None:
    manifest = serve_bundles(server, tmp_path, {"tok": {"tokenizer.json": b"{}"}})
    document = yaml.safe_load(manifest.read_text())
    document["bundles"][0]["files"]["vocab.json"] = 10
    manifest.write_text(yaml.safe_dump(document))
    result = subprocess.run([sys.executable, "-m", "implementations.llama31_8b.download", "--data-dir",
                             str(tmp_path / "data"), "--manifest", str(manifest)], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("tok.md5 does not list vocab.json (the manifest expects them)")


def test_prepare_knows_which_benchmarks_have_a_data_recipe() -> None:
    from invoke import Context, Exit  # noqa: PLC0415

    from implementations import tasks as impl_tasks  # noqa: PLC0415

    with pytest.raises(Exit) as refused:
        impl_tasks.prepare(Context(), benchmark="maskrcnn")
    assert (refused.value.code, refused.value.message) == (
        2, "impl.prepare: no dataset recipe for 'maskrcnn' (the project has: llama31_8b)")
    prepare = impl_tasks.DATASETS["llama31_8b"].tasks["prepare"]
    assert {"on_cluster", "upload", "vfolder", "image", "mirror", "from_dir"} <= set(prepare.help)
