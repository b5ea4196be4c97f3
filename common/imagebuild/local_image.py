"""Read an image's labels and user from the local Docker engine (docker SDK)."""

from __future__ import annotations

from dataclasses import dataclass

import docker
import docker.errors


class LocalImageError(LookupError):
    """The image is not in the local engine, or the engine cannot be reached."""


@dataclass(frozen=True)
class LocalImage:
    reference: str
    labels: dict[str, str]
    container_config_labels: dict[str, str] | None
    user: str


def local_image_labels(reference: str) -> LocalImage:
    try:
        client = docker.from_env()
        attrs = client.api.inspect_image(reference)
    except docker.errors.ImageNotFound as exc:
        raise LocalImageError(f"no local image or file named {reference!r}") from exc
    except docker.errors.DockerException as exc:
        raise LocalImageError(f"cannot reach the Docker engine to inspect {reference!r}: {exc}") from exc
    config = attrs.get("Config") or {}
    container_config = attrs.get("ContainerConfig")
    cc_labels = None if container_config is None else (container_config.get("Labels") or {})
    return LocalImage(reference, config.get("Labels") or {}, cc_labels, config.get("User") or "")
