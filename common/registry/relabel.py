"""Plan a relabel: read an image's manifests and configs from the registry (never its layers), rewrite
the labels of every platform, and validate them, before anything is written anywhere."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.labels.rules import PREFIX, ValidationReport, validate_labels
from common.registry.client import RegistryClient
from common.registry.errors import RegistryRefusedError
from common.registry.manifests import (
    DOCKER_LIST,
    IMAGE_TYPES,
    Manifest,
    dump_json,
    in_docker_media_types,
    is_attestation,
    platform_name,
    platform_of_config,
    with_children,
    with_config,
    wrap_in_index,
)
from common.registry.reference import RegistryReference


@dataclass(frozen=True)
class LabelEdit:
    """Labels to set and to remove; an empty edit leaves configs byte-identical."""

    set: Mapping[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()

    def apply(self, labels: Mapping[str, str]) -> dict[str, str]:
        result = {k: v for k, v in labels.items() if k not in self.unset}
        result.update(self.set)
        return result


def edit_config(raw: bytes, edit: LabelEdit) -> bytes:
    """New labels in `config.Labels`, copied to `container_config.Labels` when that key exists,
    because Backend.AI 23.09 reads container_config first and does not fall back."""
    document: dict[str, Any] = json.loads(raw)
    config = document.get("config") or {}
    labels = edit.apply(config.get("Labels") or {})
    container_config = document.get("container_config")
    unchanged = labels == (config.get("Labels") or {}) and (
        not container_config or (container_config.get("Labels") or {}) == labels)
    if unchanged:
        return raw
    document["config"] = {**config, "Labels": labels}
    if container_config:
        document["container_config"] = {**container_config, "Labels": labels}
    return dump_json(document)


@dataclass
class PlatformImage:
    platform: dict[str, str]
    manifest: Manifest
    config: bytes
    new_config: bytes
    new_manifest: Manifest
    labels: dict[str, str]
    report: ValidationReport

    @property
    def name(self) -> str:
        return platform_name(self.platform)

    @property
    def size(self) -> int:
        document = self.manifest.document
        return document["config"]["size"] + sum(layer["size"] for layer in document.get("layers", []))


@dataclass
class RelabelPlan:
    source: RegistryReference
    root: Manifest
    platforms: list[PlatformImage]
    dropped: list[dict[str, Any]]
    new_root: Manifest
    # platforms whose index entry carried annotations (Backend.AI skips such entries; dropped when rewritten)
    annotated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(image.report.ok for image in self.platforms)

    @property
    def single_manifest(self) -> bool:
        """Backend.AI before 24.09 (before 25.4 for OCI) scans only a manifest list or an OCI index."""
        return not self.new_root.is_index


def _platform_image(client: RegistryClient, reference: RegistryReference, manifest: Manifest,
                    platform: dict[str, str] | None, edit: LabelEdit, docker_types: bool) -> PlatformImage:
    if manifest.media_type not in IMAGE_TYPES:
        raise RegistryRefusedError(str(reference), "read platform manifest",
                                   f"unsupported media type {manifest.media_type}")
    config = client.get_blob(reference.repository, manifest.document["config"]["digest"])
    new_config = edit_config(config, edit)
    config_document = json.loads(new_config)
    labels = (config_document.get("config") or {}).get("Labels") or {}
    report = validate_labels({k: v for k, v in labels.items() if k.startswith(PREFIX)})
    new_manifest = manifest if new_config == config else with_config(manifest, new_config)
    if docker_types:
        try:
            converted = in_docker_media_types(new_manifest)
        except ValueError as exc:
            raise RegistryRefusedError(str(reference), "convert to Docker media types", str(exc)) from exc
        new_manifest = manifest if converted.raw == manifest.raw else converted
    return PlatformImage(platform or platform_of_config(config_document), manifest, config, new_config,
                         new_manifest, labels, report)


def plan_relabel(client: RegistryClient, reference: RegistryReference, edit: LabelEdit,
                 *, as_index: bool = False, docker_types: bool = False) -> RelabelPlan:
    """Everything the push needs, computed from the registry's manifests and config blobs.
    `docker_types` writes Docker schema 2 media types (a manifest list of Docker manifests)."""
    root = client.get_manifest(reference.repository, reference.ref)
    if not root.is_index:
        image = _platform_image(client, reference, root, None, edit, docker_types)
        new_root = wrap_in_index(image.new_manifest, image.platform) if as_index else image.new_manifest
        return RelabelPlan(reference, root, [image], [], new_root)
    platforms: list[PlatformImage] = []
    dropped: list[dict[str, Any]] = []
    children: list[dict[str, Any]] = []
    annotated: list[str] = []
    for descriptor in root.document.get("manifests", []):
        if is_attestation(descriptor):
            dropped.append(descriptor)
            continue
        child = client.get_manifest(reference.repository, descriptor["digest"])
        image = _platform_image(client, reference, child, descriptor.get("platform"), edit, docker_types)
        platforms.append(image)
        if "annotations" in descriptor:
            annotated.append(image.name)
        # Every Backend.AI line's scanner skips index entries that carry annotations (it takes
        # them for attestations), so a rewritten entry carries none.
        entry = {key: value for key, value in descriptor.items() if key != "annotations"}
        children.append({**entry, "mediaType": image.new_manifest.media_type,
                         "digest": image.new_manifest.digest, "size": image.new_manifest.size})
    retyped = docker_types and root.media_type != DOCKER_LIST
    unchanged = not dropped and not annotated and not retyped and all(i.new_manifest is i.manifest for i in platforms)
    if unchanged:
        return RelabelPlan(reference, root, platforms, dropped, root, annotated)
    new_root = with_children(root, children)
    if retyped:
        new_root = Manifest(dump_json({**new_root.document, "mediaType": DOCKER_LIST}), DOCKER_LIST)
    return RelabelPlan(reference, root, platforms, dropped, new_root, annotated)
