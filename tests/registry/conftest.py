"""The three registry configurations (plain HTTP; TLS + htpasswd Basic; token auth with the test
issuer), images pushed by the real Docker engine, and skopeo as the independent client."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from tests.harness.registry import RegistryServer
from tests.harness.system import ensure_commands, free_port

from .certificates import KeyPair, make_ca, make_server_cert, make_signing_cert
from .token_issuer import SERVICES, TokenIssuer

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "registry-tests"


@dataclass
class Registry:
    """A registry the tests talk to, with what each client needs to reach it."""

    host: str
    work: Path
    server: RegistryServer | None = None
    ca: Path | None = None
    username: str | None = None
    password: str | None = None

    def ref(self, name: str, tag: str) -> str:
        return f"{self.host}/{NAMESPACE}/{name}:{tag}"

    def unique(self, name: str) -> str:
        return self.ref(name, uuid.uuid4().hex[:10])

    def unique_repository(self, name: str) -> str:
        """A repository no earlier run has written to (the shared registry keeps its data)."""
        return self.ref(f"{name}-{uuid.uuid4().hex[:10]}", "1")

    def connection_args(self) -> list[str]:
        """Options of the images.* tasks; the password itself goes through stdin."""
        args = ["--insecure"] if self.ca is None else ["--ca-bundle", str(self.ca)]
        if self.username:
            args += ["--username", self.username, "--password-stdin"]
        return args

    def skopeo_args(self, prefix: str = "") -> list[str]:
        """skopeo's TLS and credential options (an authfile, so no secret is on its command line)."""
        if self.ca is None:
            args = [f"--{prefix}tls-verify=false"]
        else:
            cert_dir = self.work / "skopeo-certs"
            cert_dir.mkdir(exist_ok=True)
            (cert_dir / "ca.crt").write_bytes(self.ca.read_bytes())
            args = [f"--{prefix}cert-dir", str(cert_dir)]
        if self.username:
            authfile = self.work / "skopeo-auth.json"
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            authfile.write_text(json.dumps({"auths": {self.host: {"auth": token}}}))
            args.append(f"--{prefix}authfile={authfile}")
        return args


def skopeo(*args: str) -> str:
    ensure_commands("skopeo")
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"skopeo {args[0]} failed: {result.stderr}"
    return result.stdout


def skopeo_inspect(registry: Registry, ref: str, *extra: str) -> dict:
    return json.loads(skopeo("inspect", *registry.skopeo_args(), *extra, f"docker://{ref}"))


def skopeo_copy(source: Registry, src: str, target: Registry, dest: str) -> None:
    skopeo("copy", "--all", *source.skopeo_args("src-"), *target.skopeo_args("dest-"),
           f"docker://{src}", f"docker://{dest}")


def run_invoke(*args: str, stdin: str | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS...` from the project root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, input=stdin or "",
                          capture_output=True, text=True, timeout=300, env=env)


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"docker {args[0]} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    directory = tmp_path_factory.mktemp("certs")
    ca = make_ca(directory)
    return {"ca": ca, "server": make_server_cert(directory, ca), "signer": make_signing_cert(directory)}


def _start(config: dict, work: Path) -> RegistryServer:
    return RegistryServer(port=free_port(), root=work / "registry", config=config).start()


@pytest.fixture(scope="session")
def plain_registry(registry_host: str, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The shared plain-HTTP registry on :5000, which the Docker engine also reaches."""
    return Registry(registry_host, tmp_path_factory.mktemp("plain"))


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    """A private plain-HTTP registry whose storage a test may stop, restart or damage."""
    server = _start({}, tmp_path)
    yield Registry(server.host, tmp_path, server)
    server.stop()


@pytest.fixture(scope="session")
def tls_registry(certificates: dict[str, KeyPair],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """TLS with the test CA and htpasswd Basic auth, for a Harbor-style robot account."""
    work = tmp_path_factory.mktemp("tls")
    username, password = "robot$ci+pusher", secrets.token_urlsafe(18)
    htpasswd = work / "htpasswd"
    htpasswd.write_text(f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}\n")
    server = _start({"http": {"tls": {"certificate": str(certificates["server"].cert_path),
                                      "key": str(certificates["server"].key_path)}},
                     "auth": {"htpasswd": {"realm": "registry-tests", "path": str(htpasswd)}}}, work)
    yield Registry(server.host, work, server, certificates["ca"].cert_path, username, password)
    server.stop()


@pytest.fixture(scope="session", params=sorted(SERVICES))
def token_issuer(request: pytest.FixtureRequest, certificates: dict[str, KeyPair]) -> Iterator[TokenIssuer]:
    """Harbor's token service, then Docker Hub's: each test of the token flow runs against both."""
    issuer = TokenIssuer(certificates["signer"], {
        "robot$ci+pusher": (secrets.token_urlsafe(18), frozenset({"pull", "push"})),
        "reader": (secrets.token_urlsafe(18), frozenset({"pull"})),
    }, SERVICES[request.param]).start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def token_registry(token_issuer: TokenIssuer, certificates: dict[str, KeyPair],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Plain HTTP with `auth: token`: the Bearer challenge flow of Harbor or Docker Hub, whichever the
    issuer speaks (its service and issuer names; the registry trusts the signer's certificate)."""
    work = tmp_path_factory.mktemp("token")
    server = _start({"auth": {"token": {"realm": token_issuer.realm, "service": token_issuer.speaks.service,
                                        "issuer": token_issuer.speaks.issuer,
                                        "rootcertbundle": str(certificates["signer"].cert_path)}}}, work)
    username = "robot$ci+pusher"
    yield Registry(server.host, work, server, None, username, token_issuer.users[username][0])
    server.stop()


@pytest.fixture(scope="session")
def pushed_base(plain_registry: Registry, base_image: str) -> Iterator[str]:
    """The Debian + python3 base image, pushed by the Docker engine (single-platform, Docker v2)."""
    ref = plain_registry.ref("base", "engine")
    docker("tag", base_image, ref)
    docker("push", ref)
    yield ref
    docker("rmi", ref)


@pytest.fixture(scope="session")
def engine_manifest_list(plain_registry: Registry, docker_engine: None,
                         tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A two-platform manifest list made with `docker manifest` from two small images."""
    context = tmp_path_factory.mktemp("tiny")
    refs = []
    for arch in ("amd64", "arm64"):
        (context / "payload.txt").write_text(f"payload for {arch}\n")
        (context / "Dockerfile").write_text(f"FROM scratch\nCOPY payload.txt /\nLABEL built.for={arch}\n")
        ref = plain_registry.ref("tiny", arch)
        docker("build", "-q", "-t", ref, str(context))
        docker("push", ref)
        refs.append(ref)
    listed = plain_registry.ref("tiny", "list")
    docker("manifest", "create", "--insecure", "--amend", listed, *refs)
    docker("manifest", "annotate", "--arch", "arm64", listed, refs[1])
    docker("manifest", "push", "--insecure", "--purge", listed)
    yield listed
    docker("rmi", *refs)
