"""Write a planned image into a repository: blobs first, platform manifests by digest, the tag last,
so that a failure at any step leaves the tag on the previous, intact image."""

from __future__ import annotations

from collections.abc import Callable

from common.registry.client import RegistryClient, copy_blob
from common.registry.errors import RegistryError
from common.registry.manifests import blobs_of
from common.registry.reference import RegistryReference
from common.registry.relabel import RelabelPlan


def push_plan(plan: RelabelPlan, source: RegistryClient, target: RegistryClient,
              destination: RegistryReference, *, log: Callable[[str], None] = lambda _: None,
              progress: Callable[[int], None] | None = None) -> str:
    """Returns the digest the destination now points at. Errors name the destination and the step."""
    try:
        return _push(plan, source, target, destination, log, progress)
    except RegistryError as exc:
        what = exc.reference.rpartition("@")[2] if "@" in exc.reference else exc.reference
        kept = f"; {destination} still points to the previous image" if destination.tag else ""
        raise type(exc)(str(destination), f"{exc.step} ({what})", f"{exc.detail}{kept}") from exc


def _push(plan: RelabelPlan, source: RegistryClient, target: RegistryClient,
          destination: RegistryReference, log: Callable[[str], None],
          progress: Callable[[int], None] | None) -> str:
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
    digest = target.put_manifest(repository, destination.tag or plan.new_root.digest, plan.new_root)
    log(f"{destination}: now {digest}")
    return digest
