"""Images pushed by the Docker engine, relabelled and converted; Docker and skopeo read the result."""

from __future__ import annotations

import json

import pytest

from .conftest import Registry, docker, run_invoke, skopeo, skopeo_copy, skopeo_inspect

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.registry, pytest.mark.timeout(900)]

PROFILE = ["--profile", "cpu"]


def _config(registry: Registry, ref: str, *extra: str) -> dict:
    return json.loads(skopeo("inspect", "--config", "--raw", *registry.skopeo_args(), *extra, f"docker://{ref}"))


def test_relabel_in_place_keeps_layers_and_docker_runs_it(plain_registry: Registry, pushed_base: str):
    ref = plain_registry.unique("relabel")
    skopeo_copy(plain_registry, pushed_base, plain_registry, ref)
    before = skopeo_inspect(plain_registry, ref)

    result = run_invoke("images.relabel", ref, *PROFILE, "--label", "ai.backend.features=batch uid-match",
                        "--label", "org.example.note=relabelled", *plain_registry.connection_args())

    assert result.returncode == 0, result.stderr
    after = skopeo_inspect(plain_registry, ref)
    assert result.stdout.strip().endswith(after["Digest"])
    assert after["Digest"] != before["Digest"]
    assert after["Layers"] == before["Layers"]
    assert after["Labels"]["ai.backend.features"] == "batch uid-match"
    assert after["Labels"]["ai.backend.kernelspec"] == "1"
    config = _config(plain_registry, ref)
    assert config["rootfs"] == _config(plain_registry, pushed_base)["rootfs"]
    assert config["history"] == _config(plain_registry, pushed_base)["history"]
    base_layers = json.loads(docker("image", "inspect", pushed_base))[0]["RootFS"]["Layers"]
    docker("pull", ref)
    try:
        pulled = json.loads(docker("image", "inspect", ref))[0]
        assert pulled["Config"]["Labels"]["org.example.note"] == "relabelled"
        assert pulled["RootFS"]["Layers"] == base_layers
        assert docker("run", "--rm", ref, "python3", "-c", "print('still runs')").strip() == "still runs"
    finally:
        docker("rmi", ref)


def test_relabel_manifest_list_rewrites_every_platform(plain_registry: Registry, engine_manifest_list: str):
    target = plain_registry.unique("tiny")
    before = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{engine_manifest_list}"))

    result = run_invoke("images.relabel", engine_manifest_list, *PROFILE, "--label", "org.example.note=both",
                        "--to", target, *plain_registry.connection_args())

    assert result.returncode == 0, result.stderr
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{target}"))
    assert raw["mediaType"] == before["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert [m["platform"] for m in raw["manifests"]] == [m["platform"] for m in before["manifests"]]
    assert {m["digest"] for m in raw["manifests"]}.isdisjoint({m["digest"] for m in before["manifests"]})
    for arch in ("amd64", "arm64"):
        image = skopeo_inspect(plain_registry, target, "--override-arch", arch)
        original = skopeo_inspect(plain_registry, engine_manifest_list, "--override-arch", arch)
        assert image["Labels"]["org.example.note"] == "both"
        assert image["Labels"]["built.for"] == arch
        assert image["Layers"] == original["Layers"]
    untouched = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{engine_manifest_list}"))
    assert untouched == before


def test_as_index_makes_a_single_manifest_visible_to_23_09(plain_registry: Registry, pushed_base: str):
    target = plain_registry.unique("indexed")

    single = run_invoke("images.inspect", pushed_base, "--insecure")
    relabel = run_invoke("images.relabel", pushed_base, *PROFILE, "--as-index", "--to", target, "--insecure")
    inspected = run_invoke("images.inspect", target, "--insecure")
    checked = run_invoke("images.check", target, "--insecure")

    assert single.returncode == 1
    assert "Backend.AI before 24.09 (23.09 among them) scans only a manifest list" in single.stdout
    assert relabel.returncode == 0, relabel.stderr
    assert inspected.returncode == 0, inspected.stdout
    assert "manifest.list.v2+json" in inspected.stdout
    assert "ai.backend.runtime-type=python" in inspected.stdout
    assert checked.returncode == 0, checked.stderr
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{target}"))
    assert raw["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}


def test_check_reads_a_registry_image_that_is_not_local(plain_registry: Registry, pushed_base: str):
    ref = plain_registry.unique("remote-only")
    skopeo_copy(plain_registry, pushed_base, plain_registry, ref)

    result = run_invoke("images.check", ref, "--insecure")

    assert result.returncode == 1
    assert "ai.backend.kernelspec=(missing)" in result.stderr
    assert "[manifest-list]" in result.stderr


def test_convert_within_a_registry_mounts_layers(plain_registry: Registry, pushed_base: str):
    target = plain_registry.unique_repository("converted")

    result = run_invoke("images.convert", pushed_base, target, *PROFILE, "--as-index", "--insecure",
                        "--dest-insecure")

    assert result.returncode == 0, result.stderr
    assert " mounted" in result.stderr
    converted = skopeo_inspect(plain_registry, target)
    assert converted["Layers"] == skopeo_inspect(plain_registry, pushed_base)["Layers"]
    assert converted["Labels"]["ai.backend.base-distro"] == "ubuntu22.04"
