"""Faults: the registry dying mid-way, tampered blobs, unknown names. The tag must stay on the old image."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from common.registry.client import RegistryClient
from common.registry.copy import push_plan
from common.registry.errors import RegistryNotFoundError, RegistryUnavailableError
from common.registry.reference import parse_reference
from common.registry.relabel import LabelEdit, plan_relabel

from .conftest import Registry, run_invoke, skopeo_copy, skopeo_inspect

pytestmark = [pytest.mark.slow, pytest.mark.registry, pytest.mark.docker, pytest.mark.timeout(900)]


class StopRegistryBefore(requests.Session):
    """Stops the real registry process just before the first request matching method and path part."""

    def __init__(self, registry: Registry, method: str, path_part: str) -> None:
        super().__init__()
        self.registry, self.method, self.path_part = registry, method, path_part
        self.stopped = False

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        if not self.stopped and request.method == self.method and self.path_part in (request.url or ""):
            assert self.registry.server is not None
            self.registry.server.stop()
            self.stopped = True
        return super().send(request, **kwargs)


def _blob_file(registry: Registry, digest: str) -> Path:
    assert registry.server is not None
    hex_digest = digest.removeprefix("sha256:")
    return (registry.server.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
            / hex_digest[:2] / hex_digest / "data")


def test_registry_stopped_mid_relabel_leaves_the_tag(own_registry: Registry, plain_registry: Registry,
                                                     engine_manifest_list: str):
    ref = own_registry.ref("tiny", "1")
    skopeo_copy(plain_registry, engine_manifest_list, own_registry, ref)
    before = skopeo_inspect(own_registry, ref)["Digest"]
    reference = parse_reference(ref)
    session = StopRegistryBefore(own_registry, "PUT", "/manifests/sha256:")
    client = RegistryClient(reference.api_host, insecure=True, session=session)
    plan = plan_relabel(client, reference, LabelEdit({"org.example.note": "never lands"}))

    with pytest.raises(RegistryUnavailableError) as failure:
        push_plan(plan, client, client, reference)

    assert session.stopped
    assert ref in str(failure.value)
    assert "still points to the previous image" in str(failure.value)
    assert own_registry.server is not None
    own_registry.server.start()
    assert skopeo_inspect(own_registry, ref)["Digest"] == before
    assert "org.example.note" not in skopeo_inspect(own_registry, ref, "--override-arch", "arm64")["Labels"]


def test_tampered_config_blob_is_refused(own_registry: Registry, plain_registry: Registry,
                                         engine_manifest_list: str):
    ref = own_registry.ref("tiny", "1")
    skopeo_copy(plain_registry, engine_manifest_list, own_registry, ref)
    index = skopeo_inspect(own_registry, ref, "--raw")
    child = index["manifests"][0]["digest"]
    child_manifest = skopeo_inspect(own_registry, f"{ref.rpartition(':')[0]}@{child}", "--raw")
    blob = _blob_file(own_registry, child_manifest["config"]["digest"])
    blob.write_bytes(blob.read_bytes().replace(b"payload", b"PAYLOAD").replace(b"amd64", b"arm64"))

    result = run_invoke("images.relabel", ref, "--profile", "cpu", *own_registry.connection_args())

    assert result.returncode == 1
    assert "read blob failed: content hashes to sha256:" in result.stderr
    assert child_manifest["config"]["digest"] in result.stderr
    assert skopeo_inspect(own_registry, ref, "--raw") == index


def test_tampered_layer_is_not_copied(own_registry: Registry, plain_registry: Registry,
                                      engine_manifest_list: str):
    source = own_registry.ref("tiny", "1")
    skopeo_copy(plain_registry, engine_manifest_list, own_registry, source)
    index = skopeo_inspect(own_registry, source, "--raw")
    child = skopeo_inspect(own_registry, f"{source.rpartition(':')[0]}@{index['manifests'][0]['digest']}",
                           "--raw")
    layer = _blob_file(own_registry, child["layers"][0]["digest"])
    layer.write_bytes(layer.read_bytes()[:-8] + b"tampered")
    target = plain_registry.unique("tampered")

    result = run_invoke("images.convert", source, target, "--profile", "cpu", "--insecure", "--dest-insecure")

    assert result.returncode == 1
    assert target in result.stderr
    assert "content hashes to" in result.stderr or "DIGEST_INVALID" in result.stderr
    client = RegistryClient(plain_registry.host, insecure=True)
    reference = parse_reference(target)
    with pytest.raises(RegistryNotFoundError):
        client.get_manifest(reference.repository, reference.ref)
    assert not client.blob_exists(reference.repository, child["layers"][0]["digest"])


def test_unknown_repository_and_tag_are_named(own_registry: Registry):
    missing_repo = own_registry.ref("does-not-exist", "1")

    result = run_invoke("images.inspect", missing_repo, "--insecure")

    assert result.returncode == 1
    assert f"images.inspect: {missing_repo}: read manifest failed: not found" in result.stderr
    assert "MANIFEST_UNKNOWN" in result.stderr or "NAME_UNKNOWN" in result.stderr
