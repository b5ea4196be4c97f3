"""Registry credentials (flags, environment, ~/.docker/config.json, credential helpers) and the
Basic / Bearer-token challenge that Harbor and Docker Hub answer with. Secrets stay in memory:
they never reach a log line, an exception message or a process argument."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from common.registry.errors import RegistryAuthError, RegistryUnavailableError

ENV_USERNAME = "REGISTRY_USERNAME"
ENV_PASSWORD = "REGISTRY_PASSWORD"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def _config_key(server: str) -> str:
    """`https://host:port/v1/` and `host:port` name the same registry in docker's config."""
    server = re.sub(r"^https?://", "", server)
    return server.split("/", 1)[0]


def _lookup_key(registry: str) -> str:
    return "index.docker.io" if registry in ("docker.io", "registry-1.docker.io") else registry


def credentials_from_helper(helper: str, registry: str) -> Credentials | None:
    """Ask `docker-credential-<helper> get`; the server goes in on stdin, the secret comes back on stdout."""
    server = DOCKER_HUB_CONFIG_KEY if _lookup_key(registry) == "index.docker.io" else registry
    try:
        result = subprocess.run([f"docker-credential-{helper}", "get"], input=server.encode(),
                                capture_output=True, check=False, timeout=30)
    except FileNotFoundError as exc:
        raise RegistryAuthError(registry, "read credentials",
                                f"credential helper docker-credential-{helper} is not installed") from exc
    if result.returncode != 0:
        return None
    answer = json.loads(result.stdout)
    return Credentials(answer["Username"], answer["Secret"])


def credentials_from_docker_config(registry: str, config_dir: Path | None = None) -> Credentials | None:
    """Docker's own order: credHelpers for this registry, then `auths` inline, then credsStore."""
    directory = config_dir or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    path = directory / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RegistryAuthError(registry, "read credentials", f"{path} is not valid JSON") from exc
    key = _lookup_key(registry)
    helpers = {_config_key(k): v for k, v in config.get("credHelpers", {}).items()}
    if key in helpers:
        return credentials_from_helper(helpers[key], registry)
    auths = {_config_key(k): v for k, v in config.get("auths", {}).items()}
    entry = auths.get(key, {})
    if entry.get("auth"):
        username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        return Credentials(username, password)
    if config.get("credsStore"):
        return credentials_from_helper(config["credsStore"], registry)
    return None


def find_credentials(registry: str, *, username: str | None = None, password: str | None = None,
                     env: Mapping[str, str] = os.environ,
                     config_dir: Path | None = None) -> Credentials | None:
    """Explicit username + password (--password-stdin) first, then the environment, then docker's config."""
    if username and password is not None:
        return Credentials(username, password)
    if env.get(ENV_USERNAME) and env.get(ENV_PASSWORD) is not None:
        return Credentials(env[ENV_USERNAME], env[ENV_PASSWORD])
    return credentials_from_docker_config(registry, config_dir)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class RegistryAuthenticator:
    """Answers 401 challenges; remembers the Authorization value per repository scope."""

    def __init__(self, session: requests.Session, credentials: Credentials | None,
                 verify: str | bool = True) -> None:
        self.session = session
        self.verify = verify
        self.credentials = credentials
        self._headers: dict[str, str] = {}

    def header_for(self, scope_key: str) -> str | None:
        return self._headers.get(scope_key) or self._headers.get("*")

    def answer(self, response: requests.Response, scope_key: str, reference: str, step: str) -> str:
        """Compute a new Authorization value for a 401; raise when the credentials were refused."""
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        who = f"user {self.credentials.username!r}" if self.credentials else "anonymous access"
        if scheme == "basic":
            if self.credentials is None:
                raise RegistryAuthError(reference, step, "the registry asks for a login; give credentials "
                                        f"(--username + --password-stdin, {ENV_USERNAME}/{ENV_PASSWORD}, "
                                        "or docker login)")
            token = base64.b64encode(
                f"{self.credentials.username}:{self.credentials.password}".encode()).decode()
            self._headers["*"] = f"Basic {token}"
            return self._headers["*"]
        if scheme == "bearer" and "realm" in params:
            self._headers[scope_key] = f"Bearer {self._fetch_token(params, who, reference, step)}"
            return self._headers[scope_key]
        raise RegistryAuthError(reference, step, f"unsupported authentication challenge {scheme!r}")

    def refused(self, response: requests.Response, reference: str, step: str) -> RegistryAuthError:
        """The error for a 401 that came back although the challenge was answered."""
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        who = f"user {self.credentials.username!r}" if self.credentials else "anonymous access"
        if scheme == "bearer":
            return RegistryAuthError(reference, step, f"{who} is not allowed "
                                     f"{params.get('scope', 'this access')} (HTTP 401)")
        return RegistryAuthError(reference, step, f"the registry refused the credentials of {who}")

    def _fetch_token(self, params: dict[str, str], who: str, reference: str, step: str) -> str:
        query: list[tuple[str, str]] = []
        if "service" in params:
            query.append(("service", params["service"]))
        query.extend(("scope", scope) for scope in params.get("scope", "").split() if scope)
        auth = (self.credentials.username, self.credentials.password) if self.credentials else None
        try:
            reply = self.session.get(params["realm"], params=query, auth=auth, timeout=60,
                                     verify=self.verify)
        except requests.RequestException as exc:
            raise RegistryUnavailableError(reference, f"{step} (token from {params['realm']})",
                                           type(exc).__name__) from exc
        if reply.status_code in (401, 403):
            raise RegistryAuthError(reference, step, f"the token service {params['realm']} refused "
                                    f"the credentials of {who}")
        if reply.status_code != 200:
            raise RegistryAuthError(reference, step, f"the token service {params['realm']} answered "
                                    f"HTTP {reply.status_code}")
        body = reply.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryAuthError(reference, step, f"the token service {params['realm']} sent no token")
        return token
