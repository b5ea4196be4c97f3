"""A token issuer speaking the distribution token protocol the way Harbor's or Docker Hub's does: Basic
credentials in, an RS256 JWT listing the granted access out, in the JSON each service answers.

- Harbor (goharbor/harbor src/core/service/token): service `harbor-registry`, issuer
  `harbor-token-issuer`; 200 `{"token", "expires_in": 1800, "issued_at"}` (its models.Token: no
  `access_token`); the JWT names its key by libtrust key id (`kid`), which the registry matches against
  its root certificate bundle; wrong credentials: 401 with an empty body.
- Docker Hub (auth.docker.io/token): service `registry.docker.io`, issuer `auth.docker.io`; 200
  `{"token", "access_token", "expires_in": 300, "issued_at"}`, the same JWT under both names; the JWT
  carries its certificate chain (`x5c`); wrong credentials: 401 `{"details": "incorrect username or
  password"}`.

Both grant a request without credentials a token with no access (anonymous pulls of public repositories
there; nothing is public here), which the registry then refuses.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization

from .certificates import KeyPair


@dataclass(frozen=True)
class TokenService:
    """What one real token service says, as far as a client and the registry can tell."""

    name: str
    service: str
    issuer: str
    lifetime: int
    names: tuple[str, ...]  # the JSON fields that carry the token
    key_by: str  # "kid" or "x5c"
    refusal: bytes  # the body of a 401 for wrong credentials


HARBOR = TokenService("harbor", "harbor-registry", "harbor-token-issuer", 1800, ("token",), "kid", b"")
DOCKER_HUB = TokenService("docker-hub", "registry.docker.io", "auth.docker.io", 300, ("token", "access_token"),
                          "x5c", b'{"details":"incorrect username or password"}\n')
SERVICES = {s.name: s for s in (HARBOR, DOCKER_HUB)}


def libtrust_key_id(signer: KeyPair) -> str:
    """docker/libtrust's key id: the public key's DER SubjectPublicKeyInfo, SHA-256, first 240 bits in
    base32, in groups of four joined by colons (what a registry computes for its root bundle's keys)."""
    der = signer.cert.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[k:k + 4] for k in range(0, len(encoded), 4))


@dataclass
class TokenIssuer:
    signer: KeyPair
    users: dict[str, tuple[str, frozenset[str]]]  # name -> (password, allowed actions)
    speaks: TokenService = HARBOR
    issued: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def _user(self, authorization: str | None) -> tuple[str, frozenset[str]] | None:
        """(name, allowed actions); ("", none) without credentials; None for wrong ones."""
        if not authorization:
            return "", frozenset()
        if not authorization.startswith("Basic "):
            return None
        try:
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if name not in self.users or self.users[name][0] != password:
            return None
        return name, self.users[name][1]

    def grant(self, authorization: str | None, scopes: list[str]) -> str | None:
        user = self._user(authorization)
        if user is None:
            return None
        name, allowed = user
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a in allowed]
            access.append({"type": kind, "name": repository, "actions": granted})
        now = int(time.time())
        claims = {"iss": self.speaks.issuer, "sub": name, "aud": self.speaks.service, "iat": now, "nbf": now - 10,
                  "exp": now + self.speaks.lifetime, "jti": uuid.uuid4().hex, "access": access}
        if self.speaks.key_by == "kid":
            headers = {"kid": libtrust_key_id(self.signer)}
        else:
            der = self.signer.cert.public_bytes(serialization.Encoding.DER)
            headers = {"x5c": [base64.b64encode(der).decode()]}
        token = jwt.encode(claims, self.signer.key, algorithm="RS256", headers=headers)
        self.issued.append(token)
        return token

    def answer(self, token: str) -> bytes:
        issued_at = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        body = {**dict.fromkeys(self.speaks.names, token), "expires_in": self.speaks.lifetime,
                "issued_at": issued_at}
        return json.dumps(body).encode()

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if query.get("service") != [issuer.speaks.service]:
                    self._send(400, f"Unable to handle service: {query.get('service')}".encode())
                    return
                token = issuer.grant(self.headers.get("Authorization"), query.get("scope", []))
                if token is None:
                    self._send(401, issuer.speaks.refusal)
                else:
                    self._send(200, issuer.answer(token))

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests read their own output."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
