"""Manifests as raw bytes (so digests stay exact), the four media types, and the edits a relabel makes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def dump_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=3).encode()


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    media_type: str

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @cached_property
    def document(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    def descriptor(self, platform: dict[str, str] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if platform:
            entry["platform"] = platform
        return entry


def media_type_of(raw: bytes, content_type: str) -> str:
    """The registry's Content-Type, else the document's own mediaType (optional in OCI)."""
    declared = content_type.split(";", maxsplit=1)[0].strip()
    if declared in INDEX_TYPES + IMAGE_TYPES:
        return declared
    document = json.loads(raw)
    if document.get("mediaType"):
        return document["mediaType"]
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def is_attestation(descriptor: dict[str, Any]) -> bool:
    """Buildx puts provenance/SBOM manifests in the index under platform unknown/unknown."""
    platform = descriptor.get("platform", {})
    annotations = descriptor.get("annotations", {})
    return (annotations.get(ATTESTATION_ANNOTATION) == "attestation-manifest"
            or (platform.get("os") == "unknown" and platform.get("architecture") == "unknown"))


def platform_name(platform: dict[str, Any] | None) -> str:
    if not platform:
        return "unknown"
    name = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return f"{name}/{platform['variant']}" if platform.get("variant") else name


def platform_of_config(config: dict[str, Any]) -> dict[str, str]:
    platform = {"architecture": config.get("architecture", "amd64"), "os": config.get("os", "linux")}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    return platform


def with_config(manifest: Manifest, config: bytes) -> Manifest:
    """Point an image manifest at a new config blob; layers and media types stay as they were."""
    document = manifest.document
    descriptor = {**document["config"], "digest": sha256_digest(config), "size": len(config)}
    return Manifest(dump_json({**document, "config": descriptor}), manifest.media_type)


def with_children(index: Manifest, children: list[dict[str, Any]]) -> Manifest:
    return Manifest(dump_json({**index.document, "manifests": children}), index.media_type)


def wrap_in_index(manifest: Manifest, platform: dict[str, str]) -> Manifest:
    """A one-entry list: Backend.AI 23.09's scanner accepts nothing else."""
    media_type = DOCKER_LIST if manifest.media_type == DOCKER_MANIFEST else OCI_INDEX
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": [manifest.descriptor(platform)]}
    return Manifest(dump_json(document), media_type)


# OCI media type -> Docker schema 2's, for the blobs an image manifest points at (same bytes).
DOCKER_BLOB_TYPES = {
    "application/vnd.oci.image.config.v1+json": "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.layer.v1.tar+gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}


def in_docker_media_types(manifest: Manifest) -> Manifest:
    """The same image as a Docker schema 2 manifest (the blobs are untouched: only their declared media
    types change). Docker has no type for zstd or uncompressed layers, so those are refused."""
    if manifest.media_type == DOCKER_MANIFEST:
        return manifest
    document = manifest.document

    def docker(descriptor: dict[str, Any]) -> dict[str, Any]:
        media_type = descriptor.get("mediaType", "")
        if media_type not in DOCKER_BLOB_TYPES and media_type not in DOCKER_BLOB_TYPES.values():
            raise ValueError(f"blob {descriptor.get('digest', '?')[:19]} is {media_type}, which Docker schema 2 "
                             "has no media type for")
        return {**descriptor, "mediaType": DOCKER_BLOB_TYPES.get(media_type, media_type)}

    converted = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": docker(document["config"]),
                 "layers": [docker(layer) for layer in document.get("layers", [])]}
    return Manifest(dump_json(converted), DOCKER_MANIFEST)


def blobs_of(manifest: Manifest) -> list[dict[str, Any]]:
    """Config and layer descriptors that the registry must hold (foreign layers live elsewhere)."""
    document = manifest.document
    layers = [layer for layer in document.get("layers", [])
              if "foreign" not in layer.get("mediaType", "") and not layer.get("urls")]
    return [document["config"], *layers]
