"""A small token issuer speaking the distribution token protocol (the one Harbor and Docker Hub speak):
Basic credentials in, an RS256 JWT listing the granted access out."""

from __future__ import annotations

import base64
import binascii
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

SERVICE = "registry-tests"
ISSUER = "registry-tests-issuer"


@dataclass
class TokenIssuer:
    signer: KeyPair
    users: dict[str, tuple[str, frozenset[str]]]  # name -> (password, allowed actions)
    issued: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def grant(self, authorization: str | None, scopes: list[str]) -> str | None:
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if name not in self.users or self.users[name][0] != password:
            return None
        allowed = self.users[name][1]
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a in allowed]
            access.append({"type": kind, "name": repository, "actions": granted})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": name, "aud": SERVICE, "iat": now, "nbf": now - 10,
                  "exp": now + 300, "jti": uuid.uuid4().hex, "access": access}
        der = self.signer.cert.public_bytes(serialization.Encoding.DER)
        token = jwt.encode(claims, self.signer.key, algorithm="RS256",
                           headers={"x5c": [base64.b64encode(der).decode()]})
        self.issued.append(token)
        return token

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                token = issuer.grant(self.headers.get("Authorization"), query.get("scope", []))
                body = json.dumps({"token": token, "access_token": token} if token
                                  else {"details": "bad credentials"}).encode()
                self.send_response(200 if token else 401)
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
