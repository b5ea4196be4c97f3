"""Write a planned image into a repository: blobs first, platform manifests by digest, the tag last,
so that a failure at any step leaves the tag on the previous, intact image."""

from __future__ import annotations

from collections.abc import Callable

from common.registry_client import RegistryClient, copy_blob
from common.registry_errors import RegistryError
from common.registry_manifests import blobs_of
from common.registry_reference import RegistryReference
from common.relabel import RelabelPlan


def push_plan(plan: RelabelPlan, source: RegistryClient, target: RegistryClient,
              destination: RegistryReference, *, log: Callable[[str], None] = lambda _: None,
              progress: Callable[[int], None] | None = None) -> str:
    """Returns the digest the destination tag now points at."""
    repository = destination.repository
    for image in plan.platforms:
        manifest = image.new_manifest
        config, *layers = blobs_of(manifest)
        for layer in layers:
            how = copy_blob(source, plan.source.repository, target, repository, layer, progress)
            log(f"{image.name}: layer {layer['digest'][:19]} {how}")
        if not target.blob_exists(repository, config["digest"]):
            target.upload_blob(repository, config["digest"], image.new_config)
        log(f"{image.name}: config {config['digest'][:19]} ({len(image.new_config)} bytes)")
        if manifest is not plan.new_root:
            target.put_manifest(repository, manifest.digest, manifest)
            log(f"{image.name}: manifest {manifest.digest[:19]} written by digest")
    ref = destination.tag or plan.new_root.digest
    try:
        digest = target.put_manifest(repository, ref, plan.new_root)
    except RegistryError as exc:
        raise type(exc)(exc.reference, f"{exc.step} (moving tag {ref}; it still points to the previous "
                        "image)", exc.detail) from exc
    log(f"{destination.with_tag(ref) if destination.tag else destination}: now {digest}")
    return digest
