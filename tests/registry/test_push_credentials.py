"""push_images and images.convert into the two registries that ask for credentials, as Harbor does:
TLS + htpasswd Basic, and the Bearer token flow. Wrong credentials fail cleanly (the entry or the
reference named, no secret printed); right ones push, and skopeo reads the lists back with them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from common.registry.manifests import DOCKER_LIST
from tests.harness.docker_engine import engine_trusts

from .conftest import ROOT, Registry, docker, run_invoke, skopeo, skopeo_inspect

# The token flow here is Harbor's, where the project's images go (test_auth_registries runs Docker Hub's too).
pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.registry, pytest.mark.timeout(900),
              pytest.mark.parametrize("token_issuer", ["harbor"], indirect=True)]
ENTRY = ("--benchmark", "maskrcnn", "--cuda", "12.4", "--py", "3.11")
COMMIT = "0123456789abcdef0123"
TAG = "0.1.0-cuda12.4-py3.11"


@pytest.fixture(params=["basic", "token"])
def secured(request: pytest.FixtureRequest, tls_registry: Registry, token_registry: Registry) -> Registry:
    return tls_registry if request.param == "basic" else token_registry


@contextlib.contextmanager
def engine_reaches(registry: Registry) -> Iterator[list[str]]:
    """The options push_images needs for this registry, with the engine trusting its CA meanwhile."""
    if registry.ca is None:
        yield ["--insecure"]
        return
    with engine_trusts(registry.host, registry.ca):
        yield ["--ca-bundle", str(registry.ca)]


@pytest.fixture
def tagged(secured: Registry, base_image: str) -> Iterator[tuple[Registry, str]]:
    """A local image under the names push_images pushes for one matrix entry (any image will do: the
    credentials are under test, not the build)."""
    project = f"push-{uuid.uuid4().hex[:8]}"
    references = [f"{secured.host}/{project}/mlperf-maskrcnn:{TAG}", f"{secured.host}/{project}/mlperf-maskrcnn:"
                  f"{TAG}-git{COMMIT[:12]}"]
    for reference in references:
        docker("tag", base_image, reference)
    yield secured, project
    docker("rmi", *references)


def push_images(registry: Registry, project: str, password: str, options: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "common.imagebuild.push", *ENTRY, "--registry", registry.host,
                           "--project", project, "--commit", COMMIT, "--username", str(registry.username),
                           "--password-stdin", *options], input=f"{password}\n", capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_push_images_refuses_wrong_credentials_and_pushes_with_right_ones(tagged) -> None:
    registry, project = tagged
    wrong = f"wrong-{uuid.uuid4().hex[:8]}"
    with engine_reaches(registry) as options:
        refused = push_images(registry, project, wrong, options)
        pushed = push_images(registry, project, str(registry.password), options)

    assert refused.returncode == 1
    assert "FAILED maskrcnn-cuda12.4-py3.11: entry maskrcnn-cuda12.4-py3.11: push " in refused.stdout
    assert any(word in refused.stdout.lower() for word in ("unauthorized", "authentication required")), refused.stdout
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    for output in (refused.stdout + refused.stderr, pushed.stdout + pushed.stderr):
        assert wrong not in output and str(registry.password) not in output
    for tag in (TAG, f"{TAG}-git{COMMIT[:12]}"):
        reference = f"{registry.host}/{project}/mlperf-maskrcnn:{tag}"
        raw = json.loads(skopeo("inspect", "--raw", *registry.skopeo_args(), f"docker://{reference}"))
        assert raw["mediaType"] == DOCKER_LIST and len(raw["manifests"]) == 1
        assert skopeo_inspect(registry, reference)["Architecture"] == "amd64"


def test_convert_refuses_wrong_credentials_and_copies_with_right_ones(secured: Registry,
                                                                      engine_manifest_list: str) -> None:
    target = secured.unique("converted")
    tls = ["--ca-bundle", str(secured.ca)] if secured.ca else ["--dest-insecure"]
    convert = ["images.convert", engine_manifest_list, target, "--profile", "cpu", "--insecure", *tls,
               "--username", str(secured.username), "--password-stdin"]
    wrong = f"wrong-{uuid.uuid4().hex[:8]}"

    refused = run_invoke(*convert, stdin=f"{wrong}\n")
    copied = run_invoke(*convert, stdin=f"{secured.password}\n")

    assert refused.returncode == 1 and target in refused.stderr
    assert "refused the credentials of user 'robot$ci+pusher'" in refused.stderr
    assert copied.returncode == 0, copied.stderr
    for output in (refused.stdout + refused.stderr, copied.stdout + copied.stderr):
        assert wrong not in output and str(secured.password) not in output
    raw = json.loads(skopeo("inspect", "--raw", *secured.skopeo_args(), f"docker://{target}"))
    assert raw["mediaType"] == DOCKER_LIST and len(raw["manifests"]) == 2
    assert skopeo_inspect(secured, target, "--override-arch", "arm64")["Labels"]["ai.backend.kernelspec"] == "1"
