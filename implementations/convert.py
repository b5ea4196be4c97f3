"""An image the submitter already published, made a Backend.AI image in the registry, without Docker.

The image's labels are rewritten as `images.relabel` does (common.registry.relabel) and one layer is added on
top (common.registry.layer): the project's launcher, the implementation folder and the bootstrap, the same
files the built image's final stage copies (implementations.image). Only configs, manifests and that small layer
are written; the image's own layers are mounted or streamed, never stored. What needs a build cannot be added
this way (an SSH client the image lacks): `impl.check` runs the contract on the converted image.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from common.labels.rules import SERVICE_PORTS, is_root_user
from common.registry.layer import Layer, make_layer, push_with_layer, with_layer
from common.registry.reference import parse_reference
from common.registry.relabel import LabelEdit, RelabelPlan, plan_relabel
from common.registry.tasks import connect
from implementations.image import image_labels, implementation_files, launcher_files
from implementations.importer import Implementation

CREATED_BY = "mlperf-backendai: the launcher, the implementation folder and the bootstrap (implementations)"


def launcher_layer(impl: Implementation) -> Layer:
    files = [(f.path, f.data, f.mode) for f in (*launcher_files(), *implementation_files(impl))]
    return make_layer(files, f"{CREATED_BY}: {impl.title}")


def plan_conversion(impl: Implementation, source: str, *, profile: str = "cuda", as_index: bool = False,
                    docker_types: bool = False, insecure: bool = False,
                    ca_bundle: str | None = None) -> tuple[RelabelPlan, Layer]:
    """The relabelled source with the layer on top, validated; nothing is written."""
    reference = parse_reference(source)
    client = connect(reference, insecure=insecure, ca_bundle=ca_bundle)
    edit = LabelEdit(image_labels(impl, profile), (SERVICE_PORTS,))
    plan = plan_relabel(client, reference, edit, as_index=as_index, docker_types=docker_types)
    for image in plan.platforms:
        image.report.raise_for_errors(f"nothing written; {reference} ({image.name})")
    layer = launcher_layer(impl)
    return with_layer(plan, layer), layer


def convert(impl: Implementation, source: str, destination: str, *, profile: str = "cuda", as_index: bool = False,
            docker_types: bool = False, username: str | None = None, password: str | None = None,
            insecure: bool = False, dest_insecure: bool = False, ca_bundle: str | None = None,
            log: Callable[[str], None] = print) -> str:
    """Write the converted image to `destination` (any registry); the digest its tag now points at."""
    source_ref, dest_ref = parse_reference(source), parse_reference(destination)
    plan, layer = plan_conversion(impl, source, profile=profile, as_index=as_index, docker_types=docker_types,
                                  insecure=insecure, ca_bundle=ca_bundle)
    for image in plan.platforms:
        user = json.loads(image.new_config).get("config", {}).get("User") or ""
        if not is_root_user(user):
            log(f"warning: {image.name}: the image runs as USER {user}; Backend.AI's entrypoint must start as root")
    source_client = connect(source_ref, insecure=insecure, ca_bundle=ca_bundle)
    target_client = connect(dest_ref, username=username, password=password, insecure=dest_insecure,
                            ca_bundle=ca_bundle)
    return push_with_layer(plan, layer, source_client, target_client, dest_ref, log=log)
