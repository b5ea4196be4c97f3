"""Label edits, manifest shapes, references and credential lookup: the parts that need no registry."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from common.labels.image_tag import ImageReferenceError
from common.registry.auth import Credentials, find_credentials, parse_challenge
from common.registry.errors import RegistryAuthError
from common.registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    is_attestation,
    media_type_of,
    with_config,
    wrap_in_index,
)
from common.registry.reference import parse_reference
from common.registry.relabel import LabelEdit, edit_config

CONFIG = {"architecture": "amd64", "os": "linux",
          "config": {"Env": ["A=1"], "Labels": {"keep": "1", "drop": "2"}},
          "container_config": {"Cmd": ["sh"], "Labels": {"keep": "1", "drop": "2"}},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}}


def test_edit_writes_config_and_container_config_labels():
    raw = json.dumps(CONFIG).encode()

    edited = json.loads(edit_config(raw, LabelEdit({"ai.backend.kernelspec": "1"}, ("drop",))))

    assert edited["config"]["Labels"] == {"keep": "1", "ai.backend.kernelspec": "1"}
    assert edited["container_config"]["Labels"] == edited["config"]["Labels"]
    assert edited["config"]["Env"] == ["A=1"]
    assert edited["rootfs"] == CONFIG["rootfs"]


def test_empty_edit_keeps_config_bytes():
    raw = json.dumps(CONFIG, indent=1).encode()
    assert edit_config(raw, LabelEdit()) is raw


def test_edit_of_config_without_container_config_or_labels():
    raw = json.dumps({"architecture": "arm64", "os": "linux", "config": {"Labels": None}}).encode()

    edited = json.loads(edit_config(raw, LabelEdit({"x": "y"})))

    assert edited["config"]["Labels"] == {"x": "y"}
    assert "container_config" not in edited


def test_with_config_points_at_the_new_blob_and_keeps_media_type():
    manifest = Manifest(json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json", "size": 3,
        "digest": "sha256:" + "0" * 64}, "layers": []}).encode(), DOCKER_MANIFEST)

    changed = with_config(manifest, b"{}")

    assert changed.document["config"]["digest"] == \
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert changed.document["config"]["size"] == 2
    assert changed.media_type == DOCKER_MANIFEST
    assert changed.digest != manifest.digest


@pytest.mark.parametrize(("single", "listed"), [(DOCKER_MANIFEST, DOCKER_LIST), (OCI_MANIFEST, OCI_INDEX)])
def test_wrap_in_index_matches_the_manifest_family(single: str, listed: str):
    manifest = Manifest(b'{"schemaVersion": 2}', single)

    index = wrap_in_index(manifest, {"architecture": "amd64", "os": "linux"})

    assert index.media_type == listed
    assert index.document["manifests"] == [{"mediaType": single, "size": manifest.size,
                                            "digest": manifest.digest,
                                            "platform": {"architecture": "amd64", "os": "linux"}}]


def test_attestation_entries_are_recognised():
    assert is_attestation({"platform": {"os": "unknown", "architecture": "unknown"}})
    assert is_attestation({"annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    assert not is_attestation({"platform": {"os": "linux", "architecture": "arm64"}})


def test_media_type_falls_back_to_the_document():
    assert media_type_of(b'{"manifests": []}', "application/json") == OCI_INDEX
    assert media_type_of(b'{"layers": []}', "") == OCI_MANIFEST
    assert media_type_of(b"{}", f"{DOCKER_LIST}; charset=utf-8") == DOCKER_LIST


@pytest.mark.parametrize(("text", "expected"), [
    ("ubuntu", ("docker.io", "library/ubuntu", "latest", None)),
    ("harbor.example.com/mlperf/maskrcnn:1.0-cuda12.4", ("harbor.example.com", "mlperf/maskrcnn",
                                                          "1.0-cuda12.4", None)),
    ("127.0.0.1:5000/a/b@sha256:" + "f" * 64, ("127.0.0.1:5000", "a/b", None, "sha256:" + "f" * 64)),
])
def test_references(text: str, expected: tuple):
    reference = parse_reference(text)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == expected


def test_docker_hub_api_host_and_bad_reference():
    assert parse_reference("python:3.11").api_host == "registry-1.docker.io"
    with pytest.raises(ImageReferenceError):
        parse_reference("Harbor/Upper:1")


def test_challenge_parameters():
    scheme, params = parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                                     'scope="repository:a/b:pull,push repository:c:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "reg",
                      "scope": "repository:a/b:pull,push repository:c:pull"}


def _docker_config(directory: Path, content: dict) -> Path:
    (directory / "config.json").write_text(json.dumps(content))
    return directory


def test_credentials_order_stdin_then_env_then_docker_config(tmp_path: Path):
    auth = base64.b64encode(b"robot$proj+ci:from-config").decode()
    config = _docker_config(tmp_path, {"auths": {"https://harbor.example.com": {"auth": auth}}})
    env = {"REGISTRY_USERNAME": "env-user", "REGISTRY_PASSWORD": "from-env"}

    assert find_credentials("harbor.example.com", username="u", password="p", env=env,
                            config_dir=config) == Credentials("u", "p")
    assert find_credentials("harbor.example.com", env=env, config_dir=config) == \
        Credentials("env-user", "from-env")
    assert find_credentials("harbor.example.com", env={}, config_dir=config) == \
        Credentials("robot$proj+ci", "from-config")
    assert find_credentials("other.example.com", env={}, config_dir=config) is None


def test_credentials_never_show_in_repr():
    assert "s3cret" not in repr(Credentials("robot$x", "s3cret"))


def test_broken_docker_config_names_the_file(tmp_path: Path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RegistryAuthError, match=r"config\.json is not valid JSON"):
        find_credentials("harbor.example.com", env={}, config_dir=tmp_path)


def test_missing_credential_helper_is_named(tmp_path: Path):
    config = _docker_config(tmp_path, {"credHelpers": {"harbor.example.com": "absent-helper-xyz"}})
    with pytest.raises(RegistryAuthError, match="docker-credential-absent-helper-xyz is not installed"):
        find_credentials("harbor.example.com", env={}, config_dir=config)
