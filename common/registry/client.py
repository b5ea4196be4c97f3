"""Registry HTTP API v2 client on requests: manifests as raw bytes, blobs streamed, digests checked
on every read and write."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from common.registry.auth import Credentials, RegistryAuthenticator
from common.registry.errors import (
    DigestMismatchError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    RegistryRefusedError,
    RegistryUnavailableError,
)
from common.registry.manifests import ACCEPT, Manifest, media_type_of, sha256_digest

CHUNK_SIZE = 8 * 1024 * 1024
TIMEOUT = (10, 300)


class RegistryClient:
    """One registry host. `insecure` means plain HTTP; `ca_bundle` is the PEM file TLS is verified
    against instead of the system CAs."""

    def __init__(self, host: str, credentials: Credentials | None = None, *, insecure: bool = False,
                 ca_bundle: Path | None = None, session: requests.Session | None = None,
                 chunk_size: int = CHUNK_SIZE) -> None:
        self.host = host
        self.base_url = f"{'http' if insecure else 'https'}://{host}/v2/"
        self.session = session or requests.Session()
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a session's own setting.
        self.verify: str | bool = str(ca_bundle) if ca_bundle else True
        self.auth = RegistryAuthenticator(self.session, credentials, self.verify)
        self.chunk_size = chunk_size
        self.bytes_sent = 0
        self.bytes_received = 0

    def _name(self, repository: str, ref: str = "") -> str:
        return f"{self.host}/{repository}{'@' if ref.startswith('sha256:') else ':' if ref else ''}{ref}"

    def request(self, method: str, url: str, *, repository: str, step: str, reference: str,
                ok: tuple[int, ...], data: Any = None, **kwargs: Any) -> requests.Response:
        """Send with the remembered authorization; answer one 401 challenge and resend (bodies must be
        bytes for that, so streaming uploads run after a body-less request has settled the token)."""
        url = urljoin(self.base_url, url)
        headers = dict(kwargs.pop("headers", {}))
        for attempt in range(2):
            authorization = self.auth.header_for(repository)
            if authorization:
                headers["Authorization"] = authorization
            try:
                response = self.session.request(method, url, data=data, headers=headers,
                                                timeout=TIMEOUT, verify=self.verify, **kwargs)
            except requests.ConnectionError as exc:
                raise RegistryUnavailableError(reference, step, f"cannot reach {self.host} "
                                               f"({type(exc).__name__})") from exc
            except requests.RequestException as exc:
                raise RegistryUnavailableError(reference, step, f"{type(exc).__name__} talking to "
                                               f"{self.host}") from exc
            if response.status_code != 401:
                break
            if attempt == 1 or (authorization or "").startswith("Basic "):
                raise self.auth.refused(response, reference, step)
            if _is_stream(data):
                break
            self.auth.answer(response, repository, reference, step)
        if response.status_code in ok:
            self.bytes_received += len(response.content) if not kwargs.get("stream") else 0
            return response
        raise _error_for(response, reference, step)

    def get_manifest(self, repository: str, ref: str) -> Manifest:
        name = self._name(repository, ref)
        response = self.request("GET", f"{repository}/manifests/{ref}", repository=repository,
                                step="read manifest", reference=name, ok=(200,),
                                headers={"Accept": ACCEPT})
        manifest = Manifest(response.content, media_type_of(response.content,
                                                            response.headers.get("Content-Type", "")))
        expected = ref if ref.startswith("sha256:") else response.headers.get("Docker-Content-Digest")
        if expected and expected.startswith("sha256:") and expected != manifest.digest:
            raise DigestMismatchError(name, "read manifest", f"content hashes to {manifest.digest}, "
                                      f"expected {expected}")
        return manifest

    def put_manifest(self, repository: str, ref: str, manifest: Manifest) -> str:
        name = self._name(repository, ref)
        response = self.request("PUT", f"{repository}/manifests/{ref}", repository=repository,
                                step="write manifest", reference=name, ok=(201,), data=manifest.raw,
                                headers={"Content-Type": manifest.media_type})
        self.bytes_sent += manifest.size
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned != manifest.digest:
            raise DigestMismatchError(name, "write manifest", f"registry stored {returned}, "
                                      f"sent {manifest.digest}")
        return manifest.digest

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.request("HEAD", f"{repository}/blobs/{digest}", repository=repository,
                                step="check blob", reference=self._name(repository, digest), ok=(200, 404))
        return response.status_code == 200

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A small blob (a config) read whole and checked against its digest."""
        return b"".join(self.iter_blob(repository, digest))

    def iter_blob(self, repository: str, digest: str) -> Iterator[bytes]:
        """Stream a blob; the digest is checked when the last chunk has been read."""
        name = self._name(repository, digest)
        response = self.request("GET", f"{repository}/blobs/{digest}", repository=repository,
                                step="read blob", reference=name, ok=(200,), stream=True)
        hasher = hashlib.sha256()
        try:
            for chunk in response.iter_content(self.chunk_size):
                hasher.update(chunk)
                self.bytes_received += len(chunk)
                yield chunk
        except requests.RequestException as exc:
            raise RegistryUnavailableError(name, "read blob", f"connection to {self.host} dropped "
                                           f"({type(exc).__name__})") from exc
        finally:
            response.close()
        if f"sha256:{hasher.hexdigest()}" != digest:
            raise DigestMismatchError(name, "read blob", f"content hashes to sha256:{hasher.hexdigest()}")

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount: True when the registry linked the blob without a copy."""
        name = self._name(repository, digest)
        response = self.request("POST", f"{repository}/blobs/uploads/", repository=repository,
                                step="mount blob", reference=name, ok=(201, 202),
                                params={"mount": digest, "from": from_repository})
        if response.status_code == 202:
            self._cancel_upload(response, repository, name)
        return response.status_code == 201

    def upload_blob(self, repository: str, digest: str, data: bytes) -> None:
        """Monolithic upload: POST for a session, one PUT with the whole body and its digest."""
        name = self._name(repository, digest)
        if sha256_digest(data) != digest:
            raise DigestMismatchError(name, "upload blob", f"content hashes to {sha256_digest(data)}")
        location = self._start_upload(repository, name)
        self.request("PUT", location, repository=repository, step="upload blob", reference=name,
                     ok=(201,), data=data, params={"digest": digest},
                     headers={"Content-Type": "application/octet-stream"})
        self.bytes_sent += len(data)

    def upload_blob_chunks(self, repository: str, digest: str, chunks: Iterator[bytes]) -> None:
        """Chunked upload (PATCH per chunk): memory stays at one chunk; the digest is checked before
        the closing PUT, so a wrong stream never becomes a blob."""
        name = self._name(repository, digest)
        location = self._start_upload(repository, name)
        hasher = hashlib.sha256()
        offset = 0
        try:
            for chunk in chunks:
                response = self.request("PATCH", location, repository=repository, step="upload blob chunk",
                                        reference=name, ok=(202,), data=chunk, headers={
                                            "Content-Type": "application/octet-stream",
                                            "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
                hasher.update(chunk)
                offset += len(chunk)
                self.bytes_sent += len(chunk)
                location = response.headers["Location"]
        except RegistryError:
            self._cancel_location(location, repository, name)
            raise
        if f"sha256:{hasher.hexdigest()}" != digest:
            self._cancel_location(location, repository, name)
            raise DigestMismatchError(name, "upload blob", f"stream hashed to sha256:{hasher.hexdigest()}")
        self.request("PUT", location, repository=repository, step="finish blob upload", reference=name,
                     ok=(201,), params={"digest": digest})

    def _start_upload(self, repository: str, name: str) -> str:
        response = self.request("POST", f"{repository}/blobs/uploads/", repository=repository,
                                step="start blob upload", reference=name, ok=(202,))
        return response.headers["Location"]

    def _cancel_upload(self, response: requests.Response, repository: str, name: str) -> None:
        if "Location" in response.headers:
            self._cancel_location(response.headers["Location"], repository, name)

    def _cancel_location(self, location: str, repository: str, name: str) -> None:
        """Best effort: the registry also expires abandoned uploads on its own."""
        with suppress(RegistryError):
            self.request("DELETE", location, repository=repository, step="cancel upload", reference=name,
                         ok=(204, 404))


def copy_blob(source: RegistryClient, source_repository: str, target: RegistryClient,
              target_repository: str, descriptor: dict[str, Any],
              progress: Callable[[int], None] | None = None) -> str:
    """Make `descriptor`'s blob exist in the target: present, mounted, or streamed chunk by chunk.
    Returns how: "present", "mounted" or "copied"."""
    digest = descriptor["digest"]
    if target.blob_exists(target_repository, digest):
        return "present"
    if source.host == target.host and source_repository != target_repository \
            and target.mount_blob(target_repository, digest, source_repository):
        return "mounted"

    def counted() -> Iterator[bytes]:
        for chunk in source.iter_blob(source_repository, digest):
            if progress:
                progress(len(chunk))
            yield chunk

    target.upload_blob_chunks(target_repository, digest, counted())
    return "copied"


def _is_stream(data: Any) -> bool:
    return data is not None and not isinstance(data, bytes | str)


def _error_for(response: requests.Response, reference: str, step: str) -> RegistryError:
    detail = f"HTTP {response.status_code}"
    try:
        errors = response.json().get("errors") or []
        codes = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        if codes:
            detail += f" ({codes})"
    except ValueError:
        pass
    if response.status_code in (401, 403):
        return RegistryAuthError(reference, step, f"access denied: {detail}")
    if response.status_code == 404:
        return RegistryNotFoundError(reference, step, f"not found: {detail}")
    if response.status_code == 400 and "DIGEST_INVALID" in detail:
        return DigestMismatchError(reference, step, detail)
    return RegistryRefusedError(reference, step, detail)
