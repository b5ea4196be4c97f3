"""Push to the local registry (the distribution server at the core of Harbor) and read back: manifest
lists for both tags, the labels in the image config, the same image as built."""

from __future__ import annotations

import json
import subprocess

import docker
import pytest

from common.registry.client import RegistryClient
from common.registry.manifests import DOCKER_LIST, DOCKER_MANIFEST
from tests.harness.system import ensure_commands
from tests.imagebuild.conftest import COMMIT, BuiltImages, run_module

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.registry, pytest.mark.timeout(3600)]
SECRET = "s3cret-never-printed"


@pytest.fixture(scope="module")
def pushed(built_images: BuiltImages) -> tuple[BuiltImages, subprocess.CompletedProcess[str]]:
    result = run_module("common.imagebuild.push", *built_images.selection(), "--benchmark", "maskrcnn",
                        "--insecure", "--username", "robot$mlperf+ci", "--password-stdin",
                        stdin=f"{SECRET}\n")
    return built_images, result


def test_push_prints_digests_and_never_the_password(pushed) -> None:
    images, result = pushed
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    reference = images.reference("maskrcnn")
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith(images.registry)]
    assert [line[0] for line in lines] == [reference, f"{reference}-git{COMMIT[:12]}"]
    assert all(line[1] == "image" and line[3] == "list" for line in lines)
    assert "== push_images: 1 ok, 0 failed" in result.stdout


def test_both_tags_are_manifest_lists_of_the_built_image_with_its_labels(pushed) -> None:
    images, result = pushed
    assert result.returncode == 0, result.stdout + result.stderr
    registry = RegistryClient(images.registry, insecure=True)
    repository = f"{images.project}/mlperf-maskrcnn"
    tag = images.reference("maskrcnn").rpartition(":")[2]
    listed = registry.get_manifest(repository, tag)
    assert listed.media_type == DOCKER_LIST
    assert registry.get_manifest(repository, f"{tag}-git{COMMIT[:12]}").digest == listed.digest
    (child,) = listed.document["manifests"]
    assert child["platform"] == {"architecture": "amd64", "os": "linux"}
    assert child["mediaType"] == DOCKER_MANIFEST
    manifest = registry.get_manifest(repository, child["digest"])
    config = json.loads(registry.get_blob(repository, manifest.document["config"]["digest"]))
    local = docker.from_env().images.get(images.reference("maskrcnn"))
    assert config["config"]["Labels"] == local.labels
    assert manifest.document["config"]["digest"] == local.id
    # An independent client agrees (installed through the harness, like every external command).
    ensure_commands("skopeo")
    inspected = json.loads(subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{images.reference('maskrcnn')}"],
        capture_output=True, text=True, check=True).stdout)
    assert inspected["Labels"]["ai.backend.runtime-path"] == "/opt/venv/bin/python"
    assert inspected["Labels"]["org.opencontainers.image.version"] == "0.1.0"


def test_pushing_an_image_that_was_not_built_fails_naming_the_entry(built_images: BuiltImages) -> None:
    result = run_module("common.imagebuild.push", "--registry", built_images.registry, "--project",
                        built_images.project, "--commit", COMMIT, "--benchmark", "gnmt", "--cuda", "11.8",
                        "--py", "3.10", "--insecure")
    assert result.returncode == 1
    assert "FAILED gnmt-cuda11.8-py3.10: entry gnmt-cuda11.8-py3.10: push " in result.stdout
    assert "== push_images: 0 ok, 1 failed" in result.stdout
