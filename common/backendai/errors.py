"""Errors of the Backend.AI client, importable without `requests` being touched (so `invoke --list` stays light)."""

from __future__ import annotations


class BackendAIError(RuntimeError):
    """Backend.AI refused or failed a request; the message says what it answered."""


class ConfigurationError(BackendAIError):
    """The BACKEND_* variables are missing or point nowhere."""


class CredentialsError(BackendAIError):
    """The cluster rejected the access key / secret key."""


class RequestRejectedError(BackendAIError):
    """The manager refused the request (unknown image, resources below the image's minimum, ...)."""


class SessionStartError(BackendAIError):
    """The session was accepted but never ran its command."""


class ImageNotRegisteredError(BackendAIError):
    """A rescan finished but the manager does not list the image."""


class BatchTimeoutError(BackendAIError):
    """The batch session did not finish in time; it has been destroyed."""


class SessionPendingError(BackendAIError):
    """The scheduler never started the session in time; it has been destroyed."""


class BatchInterruptedError(BackendAIError):
    """The user interrupted the run (Ctrl-C); the session has been destroyed."""


class SessionPreemptedError(BackendAIError):
    """The scheduler preempted the session mid-run (26.3+ resource groups with preemption on)."""


class UnsupportedServerError(BackendAIError):
    """The manager runs a release the client has not been checked against."""


class VFolderNotFoundError(BackendAIError):
    """No usable virtual folder of that name for this key."""
