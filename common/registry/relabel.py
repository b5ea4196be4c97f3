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
    IMAGE_TYPES,
    Manifest,
    dump_json,
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

    @property
    def ok(self) -> bool:
        return all(image.report.ok for image in self.platforms)

    @property
    def skipped_by_23_09(self) -> bool:
        """23.09's scanner reads only a manifest list or an OCI index."""
        return not self.new_root.is_index


def _platform_image(client: RegistryClient, reference: RegistryReference, manifest: Manifest,
                    platform: dict[str, str] | None, edit: LabelEdit) -> PlatformImage:
    if manifest.media_type not in IMAGE_TYPES:
        raise RegistryRefusedError(str(reference), "read platform manifest",
                                   f"unsupported media type {manifest.media_type}")
    config = client.get_blob(reference.repository, manifest.document["config"]["digest"])
    new_config = edit_config(config, edit)
    config_document = json.loads(new_config)
    labels = (config_document.get("config") or {}).get("Labels") or {}
    report = validate_labels({k: v for k, v in labels.items() if k.startswith(PREFIX)})
    new_manifest = manifest if new_config == config else with_config(manifest, new_config)
    return PlatformImage(platform or platform_of_config(config_document), manifest, config, new_config,
                         new_manifest, labels, report)


def plan_relabel(client: RegistryClient, reference: RegistryReference, edit: LabelEdit,
                 *, as_index: bool = False) -> RelabelPlan:
    """Everything the push needs, computed from the registry's manifests and config blobs."""
    root = client.get_manifest(reference.repository, reference.ref)
    if not root.is_index:
        image = _platform_image(client, reference, root, None, edit)
        new_root = wrap_in_index(image.new_manifest, image.platform) if as_index else image.new_manifest
        return RelabelPlan(reference, root, [image], [], new_root)
    platforms: list[PlatformImage] = []
    dropped: list[dict[str, Any]] = []
    children: list[dict[str, Any]] = []
    for descriptor in root.document.get("manifests", []):
        if is_attestation(descriptor):
            dropped.append(descriptor)
            continue
        child = client.get_manifest(reference.repository, descriptor["digest"])
        image = _platform_image(client, reference, child, descriptor.get("platform"), edit)
        platforms.append(image)
        children.append({**descriptor, "digest": image.new_manifest.digest,
                         "size": image.new_manifest.size})
    unchanged = not dropped and all(i.new_manifest is i.manifest for i in platforms)
    return RelabelPlan(reference, root, platforms, dropped,
                       root if unchanged else with_children(root, children))
