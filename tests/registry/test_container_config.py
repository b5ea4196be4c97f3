"""Images built by older Docker engines carry `container_config`, which Backend.AI 23.09 reads first."""

from __future__ import annotations

import json

import pytest

from common.registry.client import RegistryClient
from common.registry.manifests import with_config
from common.registry.reference import parse_reference

from .conftest import Registry, run_invoke, skopeo

pytestmark = [pytest.mark.slow, pytest.mark.registry, pytest.mark.docker, pytest.mark.timeout(900)]


def test_container_config_labels_follow_config_labels(plain_registry: Registry, engine_manifest_list: str):
    amd64 = parse_reference(engine_manifest_list.rpartition(":")[0] + ":amd64")
    client = RegistryClient(plain_registry.host, insecure=True)
    manifest = client.get_manifest(amd64.repository, amd64.ref)
    config = json.loads(client.get_blob(amd64.repository, manifest.document["config"]["digest"]))
    config["container_config"] = {"Cmd": ["/bin/sh", "-c", "#(nop) LABEL stale=1"],
                                  "Labels": {"stale": "1", "ai.backend.kernelspec": "0"}}
    legacy_config = json.dumps(config).encode()
    legacy = with_config(manifest, legacy_config)
    client.upload_blob(amd64.repository, legacy.document["config"]["digest"], legacy_config)
    source = plain_registry.unique("tiny")
    client.put_manifest(amd64.repository, parse_reference(source).ref, legacy)
    target = plain_registry.unique("tiny")

    result = run_invoke("images.relabel", source, "--profile", "cpu", "--to", target, "--insecure")

    assert result.returncode == 0, result.stderr
    relabelled = json.loads(skopeo("inspect", "--config", "--raw", "--tls-verify=false", f"docker://{target}"))
    assert relabelled["container_config"]["Labels"] == relabelled["config"]["Labels"]
    assert relabelled["container_config"]["Labels"]["ai.backend.kernelspec"] == "1"
    assert "stale" not in relabelled["container_config"]["Labels"]
    assert relabelled["container_config"]["Cmd"] == config["container_config"]["Cmd"]
