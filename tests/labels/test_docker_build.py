"""With the real Docker engine: what images.label writes is what the built image carries."""

import uuid
from pathlib import Path

import docker
import pytest

from common.labels.rules import PREFIX, resolve_labels

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def built_images():
    client = docker.from_env()
    tags: list[str] = []
    yield client, tags
    for tag in tags:
        client.images.remove(tag, force=True)


def build(client, context: Path, tags: list[str]) -> str:
    tag = f"mlperf-bai-test/labels:{uuid.uuid4().hex[:12]}"
    client.images.build(path=str(context), tag=tag, rm=True)
    tags.append(tag)
    return tag


def test_injected_dockerfile_builds_and_inspect_shows_exactly_the_labels(invoke, base_image, built_images,
                                                                          tmp_path: Path):
    client, tags = built_images
    source = tmp_path / "Dockerfile.in"
    source.write_text(
        f"ARG BASE={base_image}\n"
        "FROM ${BASE}\n"
        "LABEL ai.backend.kernelspec 7\n"
        'LABEL org.example.keep="kept" ai.backend.features="uid-match"\n'
        "RUN useradd -m app\n"
        "USER app\n"
        'ENTRYPOINT ["/bin/sleep", "1000"]\n')
    note = 'quote " dollar $HOME backslash \\ end'
    result = invoke("images.label", str(source), str(tmp_path / "Dockerfile"), "--profile", "cuda",
                    "--label", f"org.example.note={note}", "--move-entrypoint")
    assert result.returncode == 0, result.stderr
    tag = build(client, tmp_path, tags)
    attrs = client.api.inspect_image(tag)
    labels = attrs["Config"]["Labels"]
    assert {k: v for k, v in labels.items() if k.startswith(PREFIX)} == resolve_labels("cuda")
    assert labels["org.example.keep"] == "kept"
    assert labels["org.example.note"] == note
    assert attrs["Config"]["User"] == "root"
    assert attrs["Config"]["Entrypoint"] is None
    output = client.containers.run(tag, ["/bin/sh", "-c", "test -x /opt/container/bootstrap.sh && id -u"],
                                   remove=True, entrypoint=[])
    assert output.strip() == b"0"
    checked = invoke("images.check", tag)
    assert checked.returncode == 0, checked.stderr
    assert "Backend.AI labels valid" in checked.stdout


def test_check_of_a_broken_local_image_names_each_problem(invoke, base_image, built_images, tmp_path: Path):
    client, tags = built_images
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        'LABEL ai.backend.kernelspec="1" ai.backend.features="uid-match" ai.backend.base-distro="debian12" '
        'ai.backend.runtime-type="python" ai.backend.runtime-path="/usr/bin/python3" '
        'ai.backend.service-ports="web:http:443"\n'
        "USER nobody\n")
    tag = build(client, tmp_path, tags)
    result = invoke("images.check", tag)
    assert result.returncode == 1
    assert "ai.backend.base-distro='debian12'" in result.stderr
    assert "The service port number 443 must be larger than 1024" in result.stderr
    assert "USER='nobody'" in result.stderr
