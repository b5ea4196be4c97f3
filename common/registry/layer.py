"""One more layer on an image in a registry, without Docker: what relabel does for labels, for files.

The layer is a gzipped tar made here (reproducible: sorted entries, owner root, mtime 0). Every platform of a
planned relabel (common.registry.relabel) gets it on top: the config's `rootfs.diff_ids` and `history` grow by
one entry, the manifest's `layers` by one descriptor of the layer's media type for that manifest, the index (if
any) points at the new manifests. The layer blob is uploaded first, then everything else is pushed the way a
relabel is (common.registry.copy), the tag last.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath

from common.registry.client import RegistryClient
from common.registry.copy import push_plan
from common.registry.manifests import DOCKER_MANIFEST, Manifest, dump_json, with_children, with_config
from common.registry.reference import RegistryReference
from common.registry.relabel import PlatformImage, RelabelPlan

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Layer:
    """A layer blob (tar.gz), its digest, and the digest of the tar inside (the config's diff_id)."""

    blob: bytes
    digest: str
    diff_id: str
    created_by: str


def make_layer(files: Iterable[tuple[str, bytes, int]], created_by: str) -> Layer:
    """A layer of `(path relative to /, content, mode)` files, their parent folders included (0755)."""
    entries = sorted(files)
    folders = sorted({str(parent) for path, _, _ in entries for parent in PurePosixPath(path).parents
                      if str(parent) != "."})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, mtime=0)
    return Layer(blob, f"sha256:{hashlib.sha256(blob).hexdigest()}",
                 f"sha256:{hashlib.sha256(tar_bytes).hexdigest()}", created_by)


def _config_with_layer(raw: bytes, layer: Layer) -> bytes:
    document = json.loads(raw)
    rootfs = document.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), layer.diff_id]
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["history"] = [*document.get("history", []), {"created": created, "created_by": layer.created_by}]
    return dump_json(document)


def _manifest_with_layer(manifest: Manifest, config: bytes, layer: Layer) -> Manifest:
    media_type = DOCKER_LAYER if manifest.media_type == DOCKER_MANIFEST else OCI_LAYER
    document = manifest.document
    layers = [*document.get("layers", []), {"mediaType": media_type, "size": len(layer.blob), "digest": layer.digest}]
    return with_config(Manifest(dump_json({**document, "layers": layers}), manifest.media_type), config)


def with_layer(plan: RelabelPlan, layer: Layer) -> RelabelPlan:
    """The plan with `layer` on top of every platform image."""
    platforms: list[PlatformImage] = []
    for image in plan.platforms:
        config = _config_with_layer(image.new_config, layer)
        platforms.append(replace(image, new_config=config,
                                 new_manifest=_manifest_with_layer(image.new_manifest, config, layer)))
    if not plan.new_root.is_index:
        return replace(plan, platforms=platforms, new_root=platforms[0].new_manifest)
    children = [{**child, "mediaType": image.new_manifest.media_type, "digest": image.new_manifest.digest,
                 "size": image.new_manifest.size}
                for child, image in zip(plan.new_root.document["manifests"], platforms, strict=True)]
    return replace(plan, platforms=platforms, new_root=with_children(plan.new_root, children))


def push_with_layer(plan: RelabelPlan, layer: Layer, source: RegistryClient, target: RegistryClient,
                    destination: RegistryReference, *, log: Callable[[str], None] = lambda _: None,
                    progress: Callable[[int], None] | None = None) -> str:
    """Upload the layer, then push the plan (blobs, configs, manifests, the tag last); the new digest."""
    if not target.blob_exists(destination.repository, layer.digest):
        target.upload_blob(destination.repository, layer.digest, layer.blob)
    log(f"layer {layer.digest[:19]} ({len(layer.blob)} bytes): {layer.created_by}")
    return push_plan(plan, source, target, destination, log=log, progress=progress)
