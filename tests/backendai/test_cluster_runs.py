"""MLPerf on the sandbox's Backend.AI: datasets prepared in virtual folders, a run as a batch session of the
project's own image with its log brought home, bad input named before any session, resumable uploads.

Everything goes through the commands a user types (`invoke maskrcnn.prepare --on-cluster`, `invoke
maskrcnn.run --on-cluster ...`) against the sandbox, with the benchmark images built from the matrix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.backendai import client as bai_client
from common.backendai import datasets
from common.backendai.sandbox import bootstrap
from common.backendai.sandbox.layout import SandboxLayout
from common.datasets.checksums import STAMP_FILE
from common.mlperf import compliance
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker, pytest.mark.registry,
              pytest.mark.training]
COCO = "test-coco"
RESOURCES = ["--cpus-per-node", "2", "--mem-per-node", "6g"]


def invoke(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def mllog(path: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in path.read_text().splitlines() if ":::MLLOG" in line]


@pytest.fixture(scope="module")
def cluster_env(sandbox: SandboxLayout) -> dict[str, str]:
    return {**os.environ, **bootstrap.client_environment(sandbox), "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture(scope="module")
def coco_vfolder(cluster_env: dict[str, str], benchmark_images: dict[str, str],
                 client_config: bai_client.APIConfig) -> Iterator[str]:
    """The Mask R-CNN sample, prepared inside a batch session of the benchmark's image."""
    result = invoke(cluster_env, "maskrcnn.prepare", "--on-cluster", "--sample", "--vfolder", COCO,
                    "--image", benchmark_images["maskrcnn"], timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Mask R-CNN sample in /home/work/test-coco: OK" in result.stdout
    yield COCO
    bai_client.delete_vfolder(COCO, config=client_config)


def test_prepare_on_cluster_fills_the_vfolder(coco_vfolder: str, client_config: bai_client.APIConfig) -> None:
    files = bai_client.list_tree(coco_vfolder, config=client_config)
    assert "coco/annotations/instances_train2017.json" in files
    assert "weights/resnet50-0676ba61.pth" in files
    assert sum(name.startswith("coco/train2017/") for name in files) == 48


def test_gnmt_prepares_its_sample_in_its_own_image(cluster_env: dict[str, str], benchmark_images: dict[str, str],
                                                   client_config: bai_client.APIConfig) -> None:
    result = invoke(cluster_env, "gnmt.prepare", "--on-cluster", "--sample", "--vfolder", "test-wmt16",
                    "--image", benchmark_images["gnmt"], timeout=900)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        files = bai_client.list_tree("test-wmt16", config=client_config)
        assert any(name.endswith("vocab.bpe.32000") for name in files), sorted(files)[:20]
    finally:
        bai_client.delete_vfolder("test-wmt16", config=client_config)


def test_one_container_run_trains_to_the_target_and_brings_the_log_home(
        coco_vfolder: str, benchmark_images: dict[str, str], cluster_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--sample", "--vfolder", coco_vfolder,
                    "--image", benchmark_images["maskrcnn"], *RESOURCES, "--seed", "1",
                    "--results-dir", str(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    log = tmp_path / "bai-1xCPU" / "maskrcnn" / "result_0.txt"
    assert f"MLPerf log: {log}" in result.stdout
    assert "compliance (3.1.0): PASSED" in result.stdout
    assert compliance.check_log(log, "3.1.0").passed
    assert any(line.startswith("RESULT,OBJECT_DETECTION,1,") for line in result.stdout.splitlines())
    records = mllog(log)
    assert [r["metadata"]["status"] for r in records if r["key"] == "run_stop"] == ["success"]
    assert next(r["value"] for r in records if r["key"] == "submission_platform") == "bai-1xCPU"
    # the program's own output, not the kernel runner's lines
    assert "ttyd" not in output and "chpasswd" not in output and "\r" not in output


def test_bad_input_is_named_before_any_session(benchmark_images: dict[str, str], cluster_env: dict[str, str],
                                               registry_host: str, tmp_path: Path) -> None:
    missing = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--vfolder", "no-such-folder",
                     "--image", benchmark_images["maskrcnn"], "--results-dir", str(tmp_path), timeout=120)
    assert missing.returncode == 1
    assert "virtual folder no-such-folder does not exist" in missing.stderr
    unknown = invoke(cluster_env, "maskrcnn.prepare", "--on-cluster", "--sample", "--vfolder", "test-unknown",
                     "--image", f"{registry_host}/mlperf-bai-test/never-registered:1.0", timeout=120)
    assert unknown.returncode == 1
    assert "never-registered" in unknown.stderr
    no_image = invoke(cluster_env, "maskrcnn.run", "--on-cluster", "--vfolder", COCO, timeout=60)
    assert no_image.returncode == 2 and "--on-cluster needs --image" in no_image.stderr


def test_upload_sends_only_what_the_folder_lacks(cluster_env: dict[str, str], client_config: bai_client.APIConfig,
                                                 tmp_path: Path) -> None:
    source = tmp_path / "prepared"
    (source / "coco" / "train2017").mkdir(parents=True)
    (source / "coco" / "train2017" / "000000000001.jpg").write_bytes(os.urandom(300_000))
    (source / "coco" / "README").write_text("first\n")
    (source / STAMP_FILE).write_text("{}")  # local bookkeeping (mtimes of this disk), not data
    try:
        first = invoke(cluster_env, "maskrcnn.prepare", "--upload", str(source), "--vfolder", "test-upload",
                       timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "test-upload: 2 files uploaded" in first.stdout
        again = invoke(cluster_env, "maskrcnn.prepare", "--upload", str(source), "--vfolder", "test-upload",
                       timeout=300)
        assert "test-upload: 0 files uploaded (0.0 MB), 2 already there" in again.stdout
        (source / "coco" / "README").write_text("other\n")  # same size, other bytes
        changed = datasets.upload_prepared(source, "test-upload", config=client_config, progress=False)
        assert changed.uploaded == ["coco/README"]
        files = bai_client.list_tree("test-upload", config=client_config)
        assert set(files) == {"coco/README", "coco/train2017/000000000001.jpg", ".mlperf-upload.json"}
        back = bai_client.download("test-upload", ["coco/README"], tmp_path / "back", config=client_config)[0]
        assert back.read_text() == "other\n"
    finally:
        bai_client.delete_vfolder("test-upload", config=client_config)
