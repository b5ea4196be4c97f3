"""Layers stream between registries in bounded memory; buildx-style attestation entries are dropped."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from common.registry.client import RegistryClient, copy_blob
from common.registry.manifests import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Manifest, sha256_digest
from common.registry.reference import parse_reference

from .conftest import Registry, run_invoke, skopeo, skopeo_inspect

pytestmark = [pytest.mark.slow, pytest.mark.registry, pytest.mark.docker, pytest.mark.timeout(900)]


def test_layer_copy_between_registries_streams_in_chunks(plain_registry: Registry, own_registry: Registry,
                                                         pushed_base: str):
    source = parse_reference(pushed_base)
    source_client = RegistryClient(plain_registry.host, insecure=True)
    manifest = source_client.get_manifest(source.repository, source.ref)
    layer = max(manifest.document["layers"], key=lambda entry: entry["size"])
    chunk = 2 * 1024 * 1024
    assert layer["size"] > 10 * chunk
    target = RegistryClient(own_registry.host, insecure=True, chunk_size=chunk)
    source_client.chunk_size = chunk

    tracemalloc.start()
    how = copy_blob(source_client, source.repository, target, "registry-tests/copied", layer)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert how == "copied"
    assert target.bytes_sent == layer["size"]
    assert peak < 6 * chunk
    assert target.blob_exists("registry-tests/copied", layer["digest"])
    assert copy_blob(source_client, source.repository, target, "registry-tests/copied", layer) == "present"


def test_attestation_manifests_are_dropped(plain_registry: Registry, engine_manifest_list: str):
    listed = parse_reference(engine_manifest_list)
    client = RegistryClient(plain_registry.host, insecure=True)
    repository = listed.repository
    platform_entry = next(entry for entry in client.get_manifest(repository, listed.ref).document["manifests"]
                          if entry["platform"]["architecture"] == "amd64")
    config, statement = b"{}", json.dumps({"_type": "https://in-toto.io/Statement/v0.1"}).encode()
    for blob in (config, statement):
        client.upload_blob(repository, sha256_digest(blob), blob)
    attestation = Manifest(json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": sha256_digest(config)},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "size": len(statement),
                    "digest": sha256_digest(statement)}]}).encode(), OCI_MANIFEST)
    client.put_manifest(repository, attestation.digest, attestation)
    index = Manifest(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**platform_entry, "mediaType": DOCKER_MANIFEST},
        {**attestation.descriptor({"architecture": "unknown", "os": "unknown"}),
         "annotations": {"vnd.docker.reference.digest": platform_entry["digest"],
                         "vnd.docker.reference.type": "attestation-manifest"}}]}).encode(), OCI_INDEX)
    source = plain_registry.unique("tiny")
    client.put_manifest(repository, parse_reference(source).ref, index)
    target = plain_registry.unique("tiny")

    result = run_invoke("images.relabel", source, "--profile", "cpu", "--to", target, "--insecure")

    assert result.returncode == 0, result.stderr
    assert f"dropped attestation manifest {attestation.digest[:19]}" in result.stderr
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{target}"))
    assert raw["mediaType"] == OCI_INDEX
    assert len(raw["manifests"]) == 1
    assert "annotations" not in raw["manifests"][0]
    assert raw["manifests"][0]["platform"]["architecture"] == "amd64"
    assert skopeo_inspect(plain_registry, target)["Labels"]["ai.backend.runtime-type"] == "python"
