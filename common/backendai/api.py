"""Backend.AI's REST API as a manager of any line from 23.09 to 26.9 takes it: signed requests over `requests`.

The project talks to the manager itself instead of through an official client SDK: each line's SDK
installs on one Python only (23.09's needs 3.11 and aiohttp 3.8; 26.x's needs exactly 3.13 and some 46
server packages), while the operators' machines run 3.11 to 3.13. What the project uses is small (sessions,
their logs, GraphQL queries, virtual folders and the storage proxy's transfers, background-task events)
and the keypair signing is documented (`manager/api/auth.py`, `sign_request`): HMAC-SHA256 over the method,
the path with its query, the Date header, the Host, the content type, the API version and the hash of an
empty body, keyed by the secret key, the date and the host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from common.backendai.errors import ConfigurationError, CredentialsError, RequestRejectedError
from common.backendai.server import Server

REQUIRED_ENV = ("BACKEND_ENDPOINT", "BACKEND_ACCESS_KEY", "BACKEND_SECRET_KEY")
# The API version the requests claim: v7 (23.09's), which every later manager still accepts
# (`api/rest/app.py` VALID_VERSIONS), so one set of request shapes serves every line.
API_VERSION = "v7.20230615"
JSON = "application/json"
OCTETS = "application/octet-stream"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0


@dataclass(frozen=True)
class APIConfig:
    """Where the manager is and the keypair that signs for this user (BACKEND_* variables)."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    # The domain and project (group) sessions and folders belong to; Backend.AI's CLI defaults both to "default".
    domain: str = "default"
    group: str = "default"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> APIConfig:
        environ = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_ENV if not environ.get(name)]
        if missing:
            raise ConfigurationError(
                f"{', '.join(missing)} not set: export the BACKEND_* variables of your cluster "
                "(for the local sandbox: `invoke bai.sandbox-status` says how)")
        kind = environ.get("BACKEND_ENDPOINT_TYPE", "api")
        if kind != "api":
            raise ConfigurationError(
                f"BACKEND_ENDPOINT_TYPE={kind}: the project signs requests with a keypair and talks to the "
                "manager's API endpoint (BACKEND_ENDPOINT_TYPE=api), not to a web server session")
        endpoint = environ["BACKEND_ENDPOINT"].rstrip("/")
        if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).netloc:
            raise ConfigurationError(f"BACKEND_ENDPOINT={endpoint} is not an http(s) URL of a manager")
        return cls(endpoint=endpoint, access_key=environ["BACKEND_ACCESS_KEY"],
                   secret_key=environ["BACKEND_SECRET_KEY"], domain=environ.get("BACKEND_DOMAIN") or "default",
                   group=environ.get("BACKEND_GROUP") or "default")

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc


class APIError(RequestRejectedError):
    """The manager (or the storage proxy) answered with an error status."""

    def __init__(self, message: str, status: int, data: Any) -> None:
        super().__init__(message)
        self.status = status
        self.data = data


def signature(config: APIConfig, *, method: str, path_qs: str, date: str, day: datetime, content_type: str,
              version: str = API_VERSION) -> str:
    """The request's signature as `sign_request` computes it on the manager."""
    text = (f"{method.upper()}\n{path_qs}\n{date}\nhost:{config.host}\ncontent-type:{content_type.lower()}\n"
            f"x-backendai-version:{version}\n{hashlib.sha256(b'').hexdigest()}")
    key = hmac.new(config.secret_key.encode(), day.strftime("%Y%m%d").encode(), "sha256").digest()
    key = hmac.new(key, config.host.encode(), "sha256").digest()
    return hmac.new(key, text.encode(), "sha256").hexdigest()


def describe(status: int, reason: str, data: Any) -> str:
    """One line of what the server answered: status, the problem's title and message."""
    if isinstance(data, Mapping):
        parts = [f"{status} {reason}".strip(), data.get("title"), data.get("msg") or data.get("detail")]
        if data.get("data") and not data.get("msg"):
            parts.append(json.dumps(data["data"])[:500])
    else:
        parts = [f"{status} {reason}".strip(), str(data)[:500] if data else None]
    return ": ".join(str(part) for part in parts if part)


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name and its data (JSON text)."""

    name: str
    data: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.data) if self.data else {}


class API:
    """A connection to one manager; every request signed, every error a BackendAIError."""

    def __init__(self, config: APIConfig) -> None:
        self.config = config
        self.http = requests.Session()
        self.requests_made = 0
        self._server: Server | None = None

    def __enter__(self) -> API:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    @property
    def server(self) -> Server:
        """The manager's release (`GET /` answers {"version": "v9.20250722", "manager": "26.9.6"})."""
        if self._server is None:
            hello = self.call("GET", "/", signed=False)
            self._server = Server(self.config.endpoint, str(hello.get("manager", "0.0")), str(hello.get("version", "")))
        return self._server

    def send(self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None,
             stream: bool = False, read_timeout: float | None = READ_TIMEOUT, signed: bool = True,
             doing: str = "", version: str = API_VERSION) -> requests.Response:
        """The raw response of a successful request; an APIError (or a specific subclass) otherwise.
        `version`: the API version the request claims (the manager reads some fields by it)."""
        body = None if json_body is None else json.dumps(json_body).encode()
        content_type = JSON if body is not None else OCTETS
        prepared = requests.Request(method, self.config.endpoint + path, data=body,
                                    params={k: v for k, v in (params or {}).items() if v is not None}).prepare()
        now = datetime.now(UTC)
        date = now.isoformat()
        headers = {"Date": date, "X-BackendAI-Version": version, "Content-Type": content_type,
                   "Host": self.config.host}
        headers["X-BackendAI-Domain"] = self.config.domain
        if signed:
            path_qs = urlsplit(prepared.url or "")._replace(scheme="", netloc="").geturl()
            headers["Authorization"] = (
                f"BackendAI signMethod=HMAC-SHA256, credential={self.config.access_key}:"
                + signature(self.config, method=method, path_qs=path_qs, date=date, day=now,
                            content_type=content_type, version=version))
        prepared.headers.update(headers)
        doing = doing or f"{method} {path}"
        self.requests_made += 1
        try:
            response = self.http.send(prepared, stream=stream, timeout=(CONNECT_TIMEOUT, read_timeout),
                                      allow_redirects=False)
        except requests.RequestException as error:
            raise ConfigurationError(
                f"cannot reach Backend.AI at BACKEND_ENDPOINT={self.config.endpoint} while {doing}: {error}; "
                "is the manager running (invoke bai.sandbox-status)?") from None
        if response.status_code >= 400:
            raise self._error(response, doing)
        return response

    def call(self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None,
             signed: bool = True, doing: str = "", version: str = API_VERSION) -> Any:
        """The JSON of a successful answer (None for an empty one)."""
        response = self.send(method, path, json_body=json_body, params=params, signed=signed, doing=doing,
                             version=version)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def gql(self, query: str, variables: Mapping[str, Any] | None = None, *, doing: str = "") -> dict[str, Any]:
        """The data of a GraphQL query (the manager's Graphene schema at /admin/gql, every line)."""
        answer = self.call("POST", "/admin/gql", json_body={"query": query, "variables": dict(variables or {})},
                           doing=doing or "a GraphQL query")
        errors = answer.get("errors") if isinstance(answer, Mapping) else None
        if errors:
            messages = "; ".join(str(error.get("message", error)) for error in errors)
            raise APIError(f"{self.server} refused {doing or 'a GraphQL query'}: {messages}", 400, errors)
        return answer.get("data") or {}

    def events(self, path: str, params: Mapping[str, Any], *, doing: str) -> Iterator[Event]:
        """Server-sent events of a stream until the server closes it."""
        response = self.send("GET", path, params=params, stream=True, read_timeout=None, doing=doing)
        name, data = "message", []
        with response:
            for line in response.iter_lines(decode_unicode=True):
                if line == "":
                    if data:
                        yield Event(name, "\n".join(data))
                    name, data = "message", []
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))

    def _error(self, response: requests.Response, doing: str) -> APIError:
        try:
            data = response.json()
        except ValueError:
            data = response.text
        where = str(self._server) if self._server else self.config.endpoint
        answer = describe(response.status_code, response.reason, data)
        if response.status_code == 401:
            return CredentialsAPIError(
                f"{where} rejected access key {self.config.access_key} while {doing} ({answer}); check "
                "BACKEND_ACCESS_KEY and BACKEND_SECRET_KEY, and that this machine's clock is right",
                response.status_code, data)
        return APIError(f"{where} refused {doing}: {answer}{hint(answer)}", response.status_code, data)


class CredentialsAPIError(APIError, CredentialsError):
    """401: the keypair or the clock is wrong."""


def hint(answer: str) -> str:
    """What to do about the manager's most common refusals."""
    lowered = answer.lower()
    if "unknown image" in lowered or "image not found" in lowered or "no such image" in lowered:
        return " (register the image first: invoke bai.register IMAGE)"
    if "minimum" in lowered or ("resource" in lowered and "small" in lowered):
        return " (request at least the image's ai.backend.resource.min.* values)"
    return ""
