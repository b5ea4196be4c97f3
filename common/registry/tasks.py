"""Invoke tasks images.relabel, images.convert and images.inspect: Backend.AI images made from images in
a registry, without Docker and without pulling layers (only configs and manifests move, unless the
image changes registry)."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Exit, task
from tqdm import tqdm

from common.labels.image_tag import ImageReferenceError, validate_image_reference
from common.labels.rules import (
    LabelValidationError,
    ProfileError,
    ValidationReport,
    parse_assignments,
    resolve_labels,
)
from common.registry.auth import find_credentials
from common.registry.client import RegistryClient
from common.registry.copy import push_plan
from common.registry.errors import RegistryError
from common.registry.manifests import OCI_INDEX, OCI_MANIFEST
from common.registry.reference import RegistryReference, parse_reference
from common.registry.relabel import LabelEdit, RelabelPlan, plan_relabel

CONNECTION_HELP = {
    "username": "login for the registry (destination for convert); the password comes from stdin",
    "password_stdin": "read the password (or Harbor robot secret) from stdin",
    "insecure": "plain HTTP instead of TLS (source registry for convert)",
    "ca_bundle": "PEM file of CAs to verify the registries' TLS against (instead of the system CAs)",
}
EDIT_HELP = {
    "label": "KEY=VALUE to set; repeatable",
    "unset": "KEY to remove; repeatable",
    "profile": "label profile from images/labels.yaml: its defaults and labels are set too",
    "as_index": "wrap a single-platform manifest in a one-entry list (Backend.AI before 24.09 needs a list)",
    "docker_format": "write Docker schema 2 media types, not OCI ones (Backend.AI 23.09 asks the registry for "
                     "Docker types only and cannot read an OCI index or manifest)",
}
TASK_ERRORS = (RegistryError, LabelValidationError, ProfileError, ImageReferenceError, ValueError, OSError)


def connect(reference: RegistryReference, *, username: str | None = None, password: str | None = None,
            insecure: bool = False, ca_bundle: str | None = None) -> RegistryClient:
    credentials = find_credentials(reference.registry, username=username, password=password)
    return RegistryClient(reference.api_host, credentials, insecure=insecure,
                          ca_bundle=Path(ca_bundle) if ca_bundle else None)


def label_edit(profile: str | None, labels: list[str], unset: list[str]) -> LabelEdit:
    """With a profile: its defaults and labels plus --label; without: only --label."""
    overrides = parse_assignments(labels)
    chosen = resolve_labels(profile, overrides) if profile else overrides
    removed = tuple(unset) + tuple(k for k, v in chosen.items() if v == "")
    return LabelEdit({k: v for k, v in chosen.items() if v != ""}, removed)


def read_password(password_stdin: bool) -> str | None:
    return sys.stdin.readline().rstrip("\r\n") if password_stdin else None


def registry_report(plan: RelabelPlan) -> ValidationReport:
    """The labels of every platform, and what Backend.AI's scanners would skip."""
    report = ValidationReport()
    for image in plan.platforms:
        prefix = f"{image.name}: " if len(plan.platforms) > 1 else ""
        for finding in image.report.errors:
            report.error(finding.label, finding.value, finding.rule, prefix + finding.message)
        for finding in image.report.warnings:
            report.warn(finding.label, finding.value, finding.rule, prefix + finding.message)
    if plan.single_manifest:
        since = "25.4" if plan.new_root.media_type == OCI_MANIFEST else "24.09"
        report.error("manifest", plan.new_root.media_type, "manifest-list",
                     f"single-platform manifest: Backend.AI before {since} (23.09 among them) scans only a "
                     "manifest list or OCI index and skips this image (images.relabel --as-index wraps it; "
                     "bai.register wraps it where the manager needs that)")
    oci = [m.media_type for m in (plan.new_root, *(image.new_manifest for image in plan.platforms))
           if m.media_type in (OCI_INDEX, OCI_MANIFEST)]
    if oci:
        report.warn("manifest", oci[0], "oci-media-types",
                    "OCI media types: Backend.AI 23.09 asks the registry for Docker media types only and cannot "
                    "read this image (images.relabel --docker-format writes Docker ones)")
    if plan.annotated:
        report.warn("manifest", ", ".join(plan.annotated), "index-annotations",
                    "index entries carry annotations: every Backend.AI line (23.09 to 26.9) skips such "
                    "entries as attestations, so these platforms are not registered (images.relabel "
                    "rewrites the index without them)")
    return report


def check_registry_image(reference: str, *, insecure: bool = False,
                         ca_bundle: str | None = None) -> ValidationReport:
    """Used by images.check for anything that is neither a file nor a local image."""
    ref = parse_reference(reference)
    plan = plan_relabel(connect(ref, insecure=insecure, ca_bundle=ca_bundle), ref, LabelEdit())
    return registry_report(plan)


def _print_plan(plan: RelabelPlan) -> None:
    for image in plan.platforms:
        before = image.manifest.document["config"]["digest"][:19]
        after = image.new_manifest.document["config"]["digest"][:19]
        print(f"{image.name}: config {before} -> {after}", file=sys.stderr)
        for finding in image.report.warnings:
            print(f"warning: {image.name}: {finding}", file=sys.stderr)
    for descriptor in plan.dropped:
        print(f"dropped attestation manifest {descriptor['digest'][:19]} (it attests the old digests)",
              file=sys.stderr)
    if plan.annotated:
        print(f"dropped the index annotations of {', '.join(plan.annotated)} (Backend.AI skips annotated "
              "entries)", file=sys.stderr)


def _require_valid(plan: RelabelPlan) -> None:
    for image in plan.platforms:
        image.report.raise_for_errors(f"nothing written; {plan.source} ({image.name})")


@task(positional=["ref"], iterable=["label", "unset"],
      help={"ref": "image in a registry, host/repo:tag", "to": "write the result here instead "
            "(same registry), e.g. another tag", **EDIT_HELP, **CONNECTION_HELP})
def relabel(c, ref, label=None, unset=None, profile=None, to=None, as_index=False, docker_format=False,
            username=None, password_stdin=False, insecure=False, ca_bundle=None):
    """Rewrite the labels of every platform of an image in the registry; the tag moves last."""
    try:
        source = parse_reference(ref)
        destination = parse_reference(to) if to else source
        if destination.registry != source.registry:
            raise ValueError(f"--to {to} is in another registry; use images.convert to copy between "
                             "registries")
        client = connect(source, username=username, password=read_password(password_stdin),
                         insecure=insecure, ca_bundle=ca_bundle)
        plan = plan_relabel(client, source, label_edit(profile, label or [], unset or []),
                            as_index=as_index, docker_types=docker_format)
        _print_plan(plan)
        _require_valid(plan)
        digest = push_plan(plan, client, client, destination,
                           log=lambda line: print(line, file=sys.stderr))
    except TASK_ERRORS as exc:
        raise Exit(f"images.relabel: {exc}", code=1) from exc
    for error in validate_image_reference(str(destination)) if destination.tag else []:
        print(f"warning: {error}", file=sys.stderr)
    print(f"{destination.registry}/{destination.repository}@{digest}")


@task(positional=["src", "dest"], iterable=["label", "unset"],
      help={"src": "source image, host/repo:tag", "dest": "destination, host/project/repo:tag",
            "dest_insecure": "plain HTTP to the destination registry", **EDIT_HELP, **CONNECTION_HELP})
def convert(c, src, dest, label=None, unset=None, profile=None, as_index=False, docker_format=False,
            username=None, password_stdin=False, insecure=False, dest_insecure=False, ca_bundle=None):
    """Copy an image between registries or repositories, relabelled on the way (layers are streamed
    or cross-mounted, never stored on disk)."""
    try:
        source_ref, destination = parse_reference(src), parse_reference(dest)
        for error in validate_image_reference(dest):
            print(f"warning: {error}", file=sys.stderr)
        source = connect(source_ref, insecure=insecure, ca_bundle=ca_bundle)
        target = connect(destination, username=username, password=read_password(password_stdin),
                         insecure=dest_insecure, ca_bundle=ca_bundle)
        plan = plan_relabel(source, source_ref, label_edit(profile, label or [], unset or []),
                            as_index=as_index, docker_types=docker_format)
        _print_plan(plan)
        _require_valid(plan)
        total = sum(image.size for image in plan.platforms)
        with tqdm(total=total, unit="B", unit_scale=True, desc="layers", disable=None) as bar:
            digest = push_plan(plan, source, target, destination, progress=bar.update,
                               log=lambda line: bar.write(line, file=sys.stderr))
    except TASK_ERRORS as exc:
        raise Exit(f"images.convert: {exc}", code=1) from exc
    print(f"{destination.registry}/{destination.repository}@{digest}")


@task(positional=["ref"], help={"ref": "image in a registry, host/repo:tag", **CONNECTION_HELP})
def inspect(c, ref, username=None, password_stdin=False, insecure=False, ca_bundle=None):
    """Platforms, sizes, labels and the Backend.AI validation report of an image in a registry."""
    try:
        reference = parse_reference(ref)
        client = connect(reference, username=username, password=read_password(password_stdin),
                         insecure=insecure, ca_bundle=ca_bundle)
        plan = plan_relabel(client, reference, LabelEdit())
    except TASK_ERRORS as exc:
        raise Exit(f"images.inspect: {exc}", code=1) from exc
    print(f"{reference}\n  digest: {plan.root.digest}\n  media type: {plan.root.media_type}")
    for image in plan.platforms:
        print(f"  platform {image.name}: {image.size} bytes, manifest {image.manifest.digest}")
        for key, value in sorted(image.labels.items()):
            print(f"    {key}={value}")
    for descriptor in plan.dropped:
        print(f"  attestation manifest {descriptor['digest']} (not an image)")
    report = registry_report(plan)
    for error in validate_image_reference(str(reference)) if reference.tag else []:
        report.error("tag", reference.tag, "tag", error)
    for finding in report.errors:
        print(f"  error: {finding}")
    for finding in report.warnings:
        print(f"  warning: {finding}")
    print(f"  Backend.AI: {'valid' if report.ok else f'{len(report.errors)} error(s)'}")
    if not report.ok:
        raise Exit(code=1)
