"""Errors of the registry client: each names the image reference and the step that failed."""

from __future__ import annotations


class RegistryError(RuntimeError):
    """A registry operation failed; `step` says which (e.g. "read manifest", "upload config blob")."""

    def __init__(self, reference: str, step: str, detail: str) -> None:
        super().__init__(f"{reference}: {step} failed: {detail}")
        self.reference = reference
        self.step = step
        self.detail = detail


class RegistryAuthError(RegistryError):
    """The registry (or its token service) refused the credentials or the requested access."""


class RegistryNotFoundError(RegistryError):
    """Unknown repository, tag, manifest or blob."""


class DigestMismatchError(RegistryError):
    """Content did not hash to the digest that names it: refused, nothing built on it."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached or dropped the connection."""


class RegistryRefusedError(RegistryError):
    """The registry answered an unexpected status (e.g. it refused an upload)."""
