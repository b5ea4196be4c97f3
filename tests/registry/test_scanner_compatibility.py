"""What Backend.AI's scanners cannot read, found and fixed in the registry: annotated index entries
(skipped by every line as attestations) and OCI media types (23.09 asks for Docker ones only)."""

from __future__ import annotations

import pytest

from common.registry.client import RegistryClient
from common.registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    dump_json,
    in_docker_media_types,
)

from .conftest import Registry, run_invoke, skopeo, skopeo_inspect

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.registry, pytest.mark.timeout(900)]
PROFILE = ["--profile", "cpu"]


@pytest.fixture(scope="module")
def annotated_index(plain_registry: Registry, pushed_base: str) -> tuple[str, RegistryClient, str]:
    """The base as an OCI image whose index entry carries annotations, as official images' do."""
    target = plain_registry.unique_repository("annotated")
    repository, tag = target.split("/", 1)[1].rsplit(":", 1)
    skopeo("copy", "--format", "oci", *plain_registry.skopeo_args("src-"), *plain_registry.skopeo_args("dest-"),
           f"docker://{pushed_base}", f"docker://{target}-amd64")
    client = RegistryClient(plain_registry.host, insecure=True)
    child = client.get_manifest(repository, f"{tag}-amd64")
    assert child.media_type == OCI_MANIFEST
    entry = {**child.descriptor({"architecture": "amd64", "os": "linux"}),
             "annotations": {"org.opencontainers.image.ref.name": tag}}
    client.put_manifest(repository, tag, Manifest(dump_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}), OCI_INDEX))
    return target, client, repository


def test_inspect_warns_about_annotated_entries_and_oci_types(annotated_index) -> None:
    target, _, _ = annotated_index
    result = run_invoke("images.inspect", target, "--insecure")
    warnings = [line for line in result.stdout.splitlines() if line.startswith("  warning: ")]
    assert any("index entries carry annotations: every Backend.AI line" in line and "[index-annotations]" in line
               for line in warnings), result.stdout
    assert any("OCI media types: Backend.AI 23.09" in line and "[oci-media-types]" in line
               for line in warnings), result.stdout


def test_relabel_drops_entry_annotations_and_can_write_docker_media_types(plain_registry: Registry,
                                                                          annotated_index) -> None:
    source, client, repository = annotated_index
    kept, docker = f"{source}-oci", f"{source}-docker"
    as_oci = run_invoke("images.relabel", source, *PROFILE, "--to", kept, "--insecure")
    as_docker = run_invoke("images.relabel", source, *PROFILE, "--to", docker, "--insecure", "--docker-format")

    assert as_oci.returncode == 0, as_oci.stderr
    assert as_docker.returncode == 0, as_docker.stderr
    oci = client.get_manifest(repository, kept.rsplit(":", 1)[1])
    assert oci.media_type == OCI_INDEX and "annotations" not in oci.document["manifests"][0]
    listed = client.get_manifest(repository, docker.rsplit(":", 1)[1])
    assert listed.media_type == DOCKER_LIST
    [entry] = listed.document["manifests"]
    assert entry["mediaType"] == DOCKER_MANIFEST and "annotations" not in entry
    child = client.get_manifest(repository, entry["digest"])
    original = client.get_manifest(repository, client.get_manifest(
        repository, source.rsplit(":", 1)[1]).document["manifests"][0]["digest"])
    assert child.media_type == DOCKER_MANIFEST
    assert [layer["digest"] for layer in child.document["layers"]] == [
        layer["digest"] for layer in original.document["layers"]], "the layers are the same blobs"
    inspected = skopeo_inspect(plain_registry, docker)
    assert inspected["Labels"]["ai.backend.runtime-type"] == "python"
    checked = run_invoke("images.inspect", docker, "--insecure")
    assert "index-annotations" not in checked.stdout and "oci-media-types" not in checked.stdout


def test_layers_docker_has_no_media_type_for_are_refused() -> None:
    zstd = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64,
                       "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "sha256:" + "b" * 64,
                        "size": 9}]}
    with pytest.raises(ValueError, match=r"tar\+zstd, which Docker schema 2 has no media type for"):
        in_docker_media_types(Manifest(dump_json(zstd), OCI_MANIFEST))
