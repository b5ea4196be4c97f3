"""Invoke collection `images`: put Backend.AI labels into Dockerfiles and check images against the rules."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Collection, Exit, task

from common.atomic import atomic_path
from common.imagebuild.local_image import LocalImageError, local_image_labels
from common.labels.dockerfile import DockerfileError, final_stage_labels, final_user, inject_labels, parse
from common.labels.image_tag import ImageReferenceError
from common.labels.rules import (
    PREFIX,
    LabelValidationError,
    ProfileError,
    ValidationReport,
    is_root_user,
    parse_assignments,
    resolve_labels,
    validate_labels,
)
from common.registry import tasks as registry_tasks
from common.registry.errors import RegistryError


def write_atomically(path: Path, text: str, mode: int | None = None) -> None:
    """Write beside the target and rename, keeping the target's mode unless one is given."""
    if mode is None and path.exists():
        mode = path.stat().st_mode & 0o7777
    with atomic_path(path) as tmp:
        tmp.write_text(text, newline="")
        if mode is not None:
            os.chmod(tmp, mode)


def read_preserving_newlines(path: Path) -> str:
    with open(path, newline="") as handle:
        return handle.read()


def print_report(report: ValidationReport, source: str) -> None:
    for finding in report.errors:
        print(f"error: {source}: {finding}", file=sys.stderr)
    for finding in report.warnings:
        print(f"warning: {source}: {finding}", file=sys.stderr)


def _profile(c, profile: str | None) -> str | None:
    if profile:
        return profile
    return c.config.get("images", {}).get("profile")


@task(
    positional=["src", "dest"],
    iterable=["label"],
    help={
        "src": "Dockerfile to read",
        "dest": "where to write the result: a path (SRC itself edits in place) or '-' for stdout",
        "profile": "label profile from images/labels.yaml (default: images.profile in invoke.yaml)",
        "label": "KEY=VALUE on top of the profile; repeatable; KEY= drops a label from the set",
        "move_entrypoint": "move the final stage's ENTRYPOINT into /opt/container/bootstrap.sh",
    },
)
def label(c, src, dest, profile=None, label=None, move_entrypoint=False):
    """Inject validated Backend.AI labels into a Dockerfile (idempotent, byte-preserving)."""
    source = Path(src)
    try:
        labels = resolve_labels(_profile(c, profile), parse_assignments(label or []))
        text = read_preserving_newlines(source)
        effective = {k: v for k, v in final_stage_labels(text).items() if k.startswith(PREFIX)}
        effective.update(labels)
        report = validate_labels(effective)
        for finding in report.warnings:
            print(f"warning: {src}: {finding}", file=sys.stderr)
        report.raise_for_errors(src)
        result = inject_labels(text, labels, move_entrypoint=move_entrypoint)
    except (OSError, DockerfileError, ProfileError, ValueError) as exc:
        if isinstance(exc, LabelValidationError):
            raise Exit(f"images.label: nothing written; {exc}", code=1) from exc
        raise Exit(f"images.label: {src}: {exc}", code=1) from exc
    for warning in result.warnings:
        print(f"warning: {src}: {warning}", file=sys.stderr)
    if result.bootstrap_script is not None and dest == "-":
        raise Exit("images.label: --move-entrypoint writes bootstrap.sh beside DEST; "
                   "give a file DEST, not '-'", code=2)
    if dest == "-":
        sys.stdout.write(result.text)
        return
    target = Path(dest)
    if result.bootstrap_script is not None:
        write_atomically(target.parent / "bootstrap.sh", result.bootstrap_script, mode=0o755)
    if result.changed or not target.exists() or target.resolve() != source.resolve():
        write_atomically(target, result.text)
    print(f"{dest}: {'labels written' if result.changed else 'already up to date'}", file=sys.stderr)


def check_dockerfile(path: Path) -> ValidationReport:
    text = read_preserving_newlines(path)
    labels = {k: v for k, v in final_stage_labels(text).items() if k.startswith(PREFIX)}
    report = validate_labels(labels)
    doc = parse(text)
    user = final_user(doc)
    if user is not None and not is_root_user(user):
        report.error("USER", user, "user-root",
                     "the final stage must end as USER root: Backend.AI's entrypoint edits "
                     "/etc/passwd and then drops to the session user")
    for ins in doc.final_stage():
        if ins.keyword in ("ENTRYPOINT", "CMD"):
            report.warn(ins.keyword, doc.args_text(ins), "overridden",
                        "Backend.AI replaces it with the kernel runner; move daemons to "
                        "/opt/container/bootstrap.sh")
    return report


def check_local_image(reference: str) -> ValidationReport:
    image = local_image_labels(reference)
    report = validate_labels({k: v for k, v in image.labels.items() if k.startswith(PREFIX)})
    if not is_root_user(image.user):
        report.error("USER", image.user, "user-root",
                     "the image must end as USER root for Backend.AI's entrypoint")
    if image.container_config_labels is not None and image.container_config_labels != image.labels:
        report.warn("container_config.Labels", None, "container-config",
                    "differs from config.Labels; Backend.AI 23.09 reads container_config first")
    return report


@task(help={"target": "a Dockerfile path, a local image (name:tag or id), or an image in a registry",
            "insecure": "plain HTTP to the registry", "ca_bundle": "extra CAs (PEM) for the registry's TLS"})
def check(c, target, insecure=False, ca_bundle=None):
    """Validate the Backend.AI labels of a Dockerfile, a local image or a registry image; exit 1 on errors."""
    try:
        path = Path(target)
        if path.is_file():
            report = check_dockerfile(path)
        else:
            try:
                report = check_local_image(target)
            except LocalImageError:
                report = registry_tasks.check_registry_image(target, insecure=insecure, ca_bundle=ca_bundle)
    except (OSError, DockerfileError, LocalImageError, RegistryError, ImageReferenceError) as exc:
        raise Exit(f"images.check: {target}: {exc}", code=1) from exc
    print_report(report, target)
    if not report.ok:
        raise Exit(f"images.check: {target}: {len(report.errors)} error(s)", code=1)
    print(f"{target}: Backend.AI labels valid ({len(report.warnings)} warning(s))")


ns = Collection(label, check, registry_tasks.relabel, registry_tasks.convert, registry_tasks.inspect)
