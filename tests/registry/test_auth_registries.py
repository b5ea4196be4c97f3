"""Convert into the TLS + Basic registry and the token-auth registry; credentials from stdin, the
environment, docker's config and a credential helper; no secret ever printed."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from .conftest import Registry, run_invoke, skopeo_inspect
from .token_issuer import TokenIssuer

pytestmark = [pytest.mark.slow, pytest.mark.registry, pytest.mark.timeout(900)]

CONVERT = ["images.convert", "--profile", "cpu", "--as-index", "--insecure"]


def _assert_no_secret(result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr


@pytest.mark.docker
def test_convert_into_tls_registry_with_password_on_stdin(plain_registry: Registry, tls_registry: Registry,
                                                          engine_manifest_list: str):
    target = tls_registry.unique("tiny")

    result = run_invoke(*CONVERT, engine_manifest_list, target, "--ca-bundle", str(tls_registry.ca),
                        "--username", tls_registry.username, "--password-stdin",
                        stdin=f"{tls_registry.password}\n")

    assert result.returncode == 0, result.stderr
    _assert_no_secret(result, tls_registry.password)
    for arch in ("amd64", "arm64"):
        copied = skopeo_inspect(tls_registry, target, "--override-arch", arch)
        source = skopeo_inspect(plain_registry, engine_manifest_list, "--override-arch", arch)
        assert copied["Layers"] == source["Layers"]
        assert copied["Labels"]["ai.backend.kernelspec"] == "1"


@pytest.mark.docker
def test_wrong_password_fails_cleanly(tls_registry: Registry, engine_manifest_list: str):
    target = tls_registry.unique("tiny")
    wrong = "not-the-password-" + tls_registry.password[:6]

    result = run_invoke(*CONVERT, engine_manifest_list, target, "--ca-bundle", str(tls_registry.ca),
                        "--username", tls_registry.username, "--password-stdin", stdin=wrong)

    assert result.returncode == 1
    assert target in result.stderr
    assert "refused the credentials of user 'robot$ci+pusher'" in result.stderr
    _assert_no_secret(result, wrong, tls_registry.password)


@pytest.mark.docker
def test_tls_is_verified_by_default(tls_registry: Registry, engine_manifest_list: str):
    target = tls_registry.unique("tiny")

    result = run_invoke(*CONVERT, engine_manifest_list, target, "--username", tls_registry.username,
                        "--password-stdin", stdin=tls_registry.password)

    assert result.returncode == 1
    assert "SSLError" in result.stderr
    _assert_no_secret(result, tls_registry.password)


@pytest.mark.docker
def test_token_auth_with_docker_config(plain_registry: Registry, token_registry: Registry,
                                       token_issuer: TokenIssuer, engine_manifest_list: str, tmp_path: Path):
    target = token_registry.unique("tiny")
    auth = base64.b64encode(f"{token_registry.username}:{token_registry.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {f"http://{token_registry.host}":
                                                                 {"auth": auth}}}))
    issued_before = len(token_issuer.issued)

    result = run_invoke(*CONVERT, engine_manifest_list, target, "--dest-insecure",
                        env={**os.environ, "DOCKER_CONFIG": str(tmp_path)})

    assert result.returncode == 0, result.stderr
    assert len(token_issuer.issued) > issued_before
    _assert_no_secret(result, token_registry.password, *token_issuer.issued)
    copied = skopeo_inspect(token_registry, target, "--override-arch", "arm64")
    assert copied["Labels"]["built.for"] == "arm64"
    assert copied["Layers"] == skopeo_inspect(plain_registry, engine_manifest_list,
                                              "--override-arch", "arm64")["Layers"]


@pytest.mark.docker
def test_credential_helper_gets_the_server_on_stdin(token_registry: Registry, token_issuer: TokenIssuer,
                                                    engine_manifest_list: str, tmp_path: Path):
    """Docker's credsStore protocol: the secret travels through pipes, never through arguments."""
    record = tmp_path / "helper-calls.jsonl"
    helper = tmp_path / "bin" / "docker-credential-registrytests"
    helper.parent.mkdir()
    answer = json.dumps({"ServerURL": token_registry.host, "Username": token_registry.username,
                         "Secret": token_registry.password})
    helper.write_text(f"#!/bin/sh\nserver=$(cat)\nprintf '%s\\n' \"{{\\\"argv\\\": \\\"$*\\\", "
                      f"\\\"server\\\": \\\"$server\\\"}}\" >> {record}\n"
                      f"[ \"$server\" = \"{token_registry.host}\" ] || exit 1\n"
                      f"cat <<'EOF'\n{answer}\nEOF\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "registrytests"}))
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path), "PATH": f"{helper.parent}:{os.environ['PATH']}"}
    target = token_registry.unique("tiny")

    result = run_invoke("images.relabel", engine_manifest_list, "--to", target, "--insecure",
                        "--label", "org.example.x=1", env=env)
    # relabel refuses another registry; convert is the way, and it asks the helper for the target only
    assert result.returncode == 1
    assert "use images.convert" in result.stderr
    result = run_invoke(*CONVERT, engine_manifest_list, target, "--dest-insecure", env=env)

    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert {call["argv"] for call in calls} == {"get"}
    assert token_registry.host in {call["server"] for call in calls}
    _assert_no_secret(result, token_registry.password, *token_issuer.issued)


@pytest.mark.docker
def test_read_only_account_is_refused_and_the_tag_stays(token_registry: Registry, token_issuer: TokenIssuer,
                                                        engine_manifest_list: str):
    target = token_registry.unique("tiny")
    pushed = run_invoke(*CONVERT, engine_manifest_list, target, "--dest-insecure", "--username",
                        token_registry.username, "--password-stdin", stdin=token_registry.password)
    assert pushed.returncode == 0, pushed.stderr
    before = skopeo_inspect(token_registry, target)["Digest"]
    reader_password = token_issuer.users["reader"][0]

    result = run_invoke("images.relabel", target, "--label", "org.example.x=2", "--insecure",
                        "--username", "reader", "--password-stdin", stdin=reader_password)

    assert result.returncode == 1
    assert target in result.stderr
    assert "not allowed" in result.stderr or "access denied" in result.stderr
    _assert_no_secret(result, reader_password, *token_issuer.issued)
    assert skopeo_inspect(token_registry, target)["Digest"] == before


@pytest.mark.docker
def test_the_token_service_refusing_a_wrong_password_is_named(token_registry: Registry, token_issuer: TokenIssuer,
                                                              engine_manifest_list: str):
    """Harbor answers 401 with no body, Docker Hub with its `details`: either way the user is told."""
    target = token_registry.unique("tiny")
    wrong = "not-the-password-" + token_registry.password[:6]

    result = run_invoke(*CONVERT, engine_manifest_list, target, "--dest-insecure", "--username",
                        token_registry.username, "--password-stdin", stdin=wrong)

    assert result.returncode == 1
    assert (f"the token service {token_issuer.realm} refused the credentials of user "
            f"'{token_registry.username}'") in result.stderr
    _assert_no_secret(result, wrong, token_registry.password)


@pytest.mark.docker
def test_an_anonymous_token_without_access_is_refused_by_name(token_registry: Registry,
                                                              engine_manifest_list: str, tmp_path: Path):
    """Without credentials both services issue a token with no access; the registry then refuses the push."""
    target = token_registry.unique("tiny")
    (tmp_path / "config.json").write_text("{}")

    result = run_invoke(*CONVERT, engine_manifest_list, target, "--dest-insecure",
                        env={**os.environ, "DOCKER_CONFIG": str(tmp_path)})

    assert result.returncode == 1
    assert "anonymous access is not allowed" in result.stderr, result.stderr
