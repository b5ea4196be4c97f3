"""The implementation's image for Backend.AI: its Dockerfile with the project's final stage, built by the engine and
checked against the image contract; and a published image made one in the registry, with the launcher as one
more layer and without Docker. The launcher's modules run on the standard library alone (the image's Python)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import docker
import pytest

from common.imagebuild import matrix as m
from common.labels.rules import SERVICE_PORTS
from common.registry.client import RegistryClient
from implementations import image, importer
from implementations.convert import convert, plan_conversion
from tests.implementations.conftest import IMPL, SUBMISSION, import_image


def test_the_launcher_modules_import_with_the_standard_library_alone(tmp_path: Path) -> None:
    for module in image.LAUNCHER_MODULES:
        target = tmp_path / module
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((m.ROOT / module).read_bytes())
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import implementations.slurm_world; "
             "print(sorted(n for n in ('yaml', 'requests', 'docker', 'mlperf_logging', 'torch') if n in sys.modules))")
    # -I: no user site, no PYTHON* variables; -S: no site-packages at all, only the standard library
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(tmp_path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_final_stage_names_the_last_stage_and_ends_as_root_with_the_labels(submission: Path) -> None:
    dockerfile = submission / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "USER nobody\nENTRYPOINT [\"/bin/false\"]\n")
    impl = importer.read_implementation(submission)
    text, warnings = image.with_final_stage(dockerfile.read_text(), image.image_labels(impl, "cpu"))
    assert "FROM ${FROM_IMAGE_NAME} AS mlperf-implementation\n" in text
    stage = text[text.index("FROM mlperf-implementation"):]
    assert stage.splitlines()[1] == "USER root"
    assert "COPY .mlperf-bai/launcher/ /opt/mlperf-bai/" in stage
    assert "COPY .mlperf-bai/bootstrap.sh /opt/container/bootstrap.sh" in stage
    assert 'org.mlperf-backendai.implementation="Backend.AI/llama31_8b/cpu_gloo"' in stage
    assert SERVICE_PORTS not in stage and warnings == []
    named = dockerfile.read_text().replace("FROM ${FROM_IMAGE_NAME}", "FROM ${FROM_IMAGE_NAME} AS trainer")
    assert "\nFROM trainer\nUSER root\n" in image.with_final_stage(named, {})[0]


@pytest.fixture(scope="module")
def implementation_image(base_image: str, wheelhouse: str, registry_host: str) -> str:
    """The tests' implementation, built with the project's final stage (impl.import) and pushed."""
    return import_image(f"{registry_host}/mlperf-impl-test/tiny-gloo:5.1-cpu", base_image, wheelhouse)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.docker
@pytest.mark.registry
def test_the_built_image_passes_the_contract_and_runs_the_launcher(implementation_image: str) -> None:
    engine = docker.from_env()
    config = engine.images.get(implementation_image).attrs["Config"]
    assert config["Labels"]["ai.backend.runtime-path"] == "/usr/bin/python3"
    assert config["Labels"][m.BENCHMARK_LABEL] == "llama31_8b"
    assert config["User"] in ("", "root")
    assert config["WorkingDir"] == "/workspace/impl"
    listing = engine.containers.run(implementation_image, entrypoint=["sh", "-c", (
        "ls /opt/mlperf-impl && python -c 'import torch.distributed as d; print(d.is_gloo_available())' && "
        "MLPERF_IMPL_LINKS='/data=/tmp/d;/results=/tmp/r' && . /opt/container/bootstrap.sh && readlink /data")],
        user="root", remove=True).decode()
    assert "config_CPU_1x2x4.sh" in listing and "run_and_time.sh" in listing
    assert "True" in listing and listing.strip().endswith("/tmp/d")


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.docker
@pytest.mark.registry
def test_a_published_image_is_converted_in_the_registry_with_the_launcher_as_one_layer(
        base_image: str, registry_host: str) -> None:
    engine = docker.from_env()
    published = f"{registry_host}/mlperf-impl-test/published:25.09-py3"
    engine.images.get(base_image).tag(published)
    for line in engine.images.push(published, stream=True, decode=True):
        assert "error" not in line, line
    impl = importer.read_implementation(SUBMISSION / IMPL)
    plan, layer = plan_conversion(impl, published, profile="cpu", as_index=True, insecure=True)
    destination = f"{registry_host}/mlperf-impl-test/converted:25.09-py3"
    digest = convert(impl, published, destination, profile="cpu", as_index=True, insecure=True, dest_insecure=True,
                     log=lambda _: None)
    client = RegistryClient(registry_host, insecure=True)
    index = client.get_manifest("mlperf-impl-test/converted", "25.09-py3")
    assert index.digest == digest and index.is_index
    manifest = client.get_manifest("mlperf-impl-test/converted", index.document["manifests"][0]["digest"])
    source = client.get_manifest("mlperf-impl-test/published", "25.09-py3")
    assert [lay["digest"] for lay in manifest.document["layers"]] == [
        *(lay["digest"] for lay in source.document["layers"]), layer.digest]
    config = json.loads(client.get_blob("mlperf-impl-test/converted", manifest.document["config"]["digest"]))
    assert config["rootfs"]["diff_ids"][-1] == layer.diff_id
    assert config["config"]["Labels"][m.BENCHMARK_LABEL] == "llama31_8b"
    assert SERVICE_PORTS not in config["config"]["Labels"]
    blob = client.get_blob("mlperf-impl-test/converted", layer.digest)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        names = tar.getnames()
    assert "opt/mlperf-bai/implementations/slurm_world.py" in names
    assert "opt/mlperf-impl/config_CPU_2x1x8.sh" in names and "opt/container/bootstrap.sh" in names
    # what the engine makes of it: the layer's files are there and the contract holds
    engine.images.pull(destination)
    report = image.check(destination)
    assert report.ok, report.lines()
    assert plan.platforms[0].labels[m.BENCHMARK_LABEL] == "llama31_8b"
