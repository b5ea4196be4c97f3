"""Make an image in a registry known to a Backend.AI manager.

Managers before 24.09 scan only manifest lists / OCI indexes (before 25.4, single OCI manifests are
skipped too), so for them a single-platform image is first wrapped in a one-entry list under the same
tag (the platform manifest and its blobs stay as they are; a `docker pull` of the tag resolves to the
same image). Then the manager rescans it, the way its release allows (common/backendai/rescan.py).
"""

from __future__ import annotations

import json
from typing import Any

from common.backendai import client as bai_client
from common.backendai.api import APIConfig
from common.backendai.errors import ImageNotRegisteredError
from common.backendai.server import Server
from common.registry.auth import find_credentials
from common.registry.client import RegistryClient
from common.registry.manifests import OCI_INDEX, OCI_MANIFEST, is_attestation, platform_of_config, wrap_in_index
from common.registry.reference import parse_reference

# Backend.AI names architectures like the kernel does (common/arch.py there).
ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def plain_http(registry: str) -> bool:
    """Local registries (the sandbox's) speak plain HTTP; everything else TLS."""
    return registry.rsplit(":", 1)[0] in LOCAL_HOSTS


def scans_single_manifest(server: Server, media_type: str) -> bool:
    return server.has("single_oci_manifest" if media_type == OCI_MANIFEST else "single_docker_manifest")


def ensure_manifest_list(reference: str, *, insecure: bool | None = None,
                         server: Server | None = None) -> tuple[bool, str]:
    """(whether the tag was wrapped, the Backend.AI architecture of its platform image). Without a
    server, wraps as the oldest line needs."""
    ref = parse_reference(reference)
    if ref.tag is None:
        raise ValueError(f"{reference}: Backend.AI registers tags, not digests")
    client = RegistryClient(ref.api_host, find_credentials(ref.registry),
                            insecure=plain_http(ref.registry) if insecure is None else insecure)
    manifest = client.get_manifest(ref.repository, ref.tag)
    if server is not None and not server.has("oci_media_types") and manifest.media_type in (OCI_INDEX, OCI_MANIFEST):
        raise ImageNotRegisteredError(
            f"{reference} is an {manifest.media_type}, which {server} cannot read: "
            f"{server.rule('oci_media_types')}; `invoke images.relabel {reference} --docker-format` rewrites it "
            "with Docker media types (the layers stay as they are)")
    if manifest.is_index:
        entries = [entry for entry in manifest.document.get("manifests", []) if not is_attestation(entry)]
        if entries and all("annotations" in entry for entry in entries):
            raise ImageNotRegisteredError(
                f"{reference}: every entry of its index carries annotations, which every Backend.AI line "
                "(23.09 to 26.9) skips as attestations; `invoke images.relabel "
                f"{reference}` rewrites the index without them")
        platforms = [entry.get("platform", {}) for entry in entries]
        architecture = next((p["architecture"] for p in platforms if p.get("architecture")), "amd64")
        return False, ARCH_ALIASES.get(architecture, architecture)
    config = json.loads(client.get_blob(ref.repository, manifest.document["config"]["digest"]))
    platform = platform_of_config(config)
    architecture = ARCH_ALIASES.get(platform["architecture"], platform["architecture"])
    if server is not None and scans_single_manifest(server, manifest.media_type):
        return False, architecture
    client.put_manifest(ref.repository, ref.tag, wrap_in_index(manifest, platform))
    return True, architecture


def register(reference: str, *, insecure: bool | None = None,
             config: APIConfig | None = None) -> dict[str, Any]:
    """Wrap when the manager needs it, rescan, return the manager's record of the image."""
    _, architecture = ensure_manifest_list(reference, insecure=insecure, server=bai_client.server(config))
    return bai_client.register_image(reference, architecture=architecture, config=config)
