"""Make an image in a registry known to a Backend.AI manager.

A 23.09 manager scans only manifest lists / OCI indexes, so a single-platform image is first wrapped
in a one-entry list under the same tag (the platform manifest and its blobs stay as they are; a
`docker pull` of the tag resolves to the same image), then the manager rescans that one reference.
"""

from __future__ import annotations

import json
from typing import Any

from ai.backend.client.config import APIConfig

from common.backendai import client as bai_client
from common.registry.auth import find_credentials
from common.registry.client import RegistryClient
from common.registry.manifests import platform_of_config, wrap_in_index
from common.registry.reference import parse_reference

# Backend.AI names architectures like the kernel does (common/arch.py there).
ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def plain_http(registry: str) -> bool:
    """Local registries (the sandbox's) speak plain HTTP; everything else TLS."""
    return registry.rsplit(":", 1)[0] in LOCAL_HOSTS


def ensure_manifest_list(reference: str, *, insecure: bool | None = None) -> tuple[bool, str]:
    """(whether the tag was wrapped, the Backend.AI architecture of its platform image)."""
    ref = parse_reference(reference)
    if ref.tag is None:
        raise ValueError(f"{reference}: Backend.AI registers tags, not digests")
    client = RegistryClient(ref.api_host, find_credentials(ref.registry),
                            insecure=plain_http(ref.registry) if insecure is None else insecure)
    manifest = client.get_manifest(ref.repository, ref.tag)
    if manifest.is_index:
        platforms = [entry.get("platform", {}) for entry in manifest.document.get("manifests", [])]
        architecture = next((p["architecture"] for p in platforms if p.get("architecture")), "amd64")
        return False, ARCH_ALIASES.get(architecture, architecture)
    config = json.loads(client.get_blob(ref.repository, manifest.document["config"]["digest"]))
    platform = platform_of_config(config)
    client.put_manifest(ref.repository, ref.tag, wrap_in_index(manifest, platform))
    return True, ARCH_ALIASES.get(platform["architecture"], platform["architecture"])


def register(reference: str, *, insecure: bool | None = None,
             config: APIConfig | None = None) -> dict[str, Any]:
    """Wrap when needed, rescan the one reference, return the manager's record of the image."""
    _, architecture = ensure_manifest_list(reference, insecure=insecure)
    return bai_client.register_image(reference, architecture=architecture, config=config)
