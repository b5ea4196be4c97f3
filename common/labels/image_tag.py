"""Image references and the tag grammar Backend.AI's ImageRef/PlatformTagSet accept.

The manager splits a tag on `-`: the first part is the version, every later part is a platform tag
such as `cuda12.4` or `py3.11` (letters, then a dotted number, then optional lowercase letters/digits)
or a word of letters only, and no two parts may share a name. A tag outside the grammar makes the
rescan skip the image (InvalidImageTag), so it is checked before anything is pushed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-._]*[A-Za-z0-9])?$")
# 23.09 refuses `_` in platform-tag names; later releases allow it. The stricter rule keeps tags
# valid on every supported manager.
PLATFORM_PART = re.compile(r"^(?P<name>[a-zA-Z]+)(?P<version>\d+(?:\.\d+)*[a-z0-9]*)?$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
DOCKER_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")


class ImageReferenceError(ValueError):
    """A reference that cannot even be split into registry, repository and tag."""


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image_reference(ref: str, default_registry: str = "docker.io") -> ImageReference:
    """Split `registry/repo[:tag][@digest]` as the Docker CLI does.

    The first path part is a registry host when it has a `.` or `:` or is `localhost`.
    """
    if not ref or ref != ref.strip():
        raise ImageReferenceError(f"image reference {ref!r} is empty or has surrounding spaces")
    name, _, digest = ref.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first, rest
    else:
        registry, remainder = default_registry, name
    repository, colon, tag = remainder.rpartition(":") if ":" in remainder else (remainder, "", "")
    if not colon:
        repository, tag = remainder, ""
    if not repository or not DOCKER_REPOSITORY.match(repository):
        raise ImageReferenceError(
            f"image reference {ref!r}: repository {repository!r} is not a valid name "
            "(lowercase letters, digits and separators)")
    if digest and not re.match(r"^sha256:[0-9a-f]{64}$", digest):
        raise ImageReferenceError(f"image reference {ref!r}: digest {digest!r} is not sha256:<64 hex>")
    return ImageReference(registry, repository, tag or None, digest or None)


def tag_errors(tag: str) -> list[str]:
    """Why Backend.AI would refuse this tag (empty list when it is accepted)."""
    if not TAG.match(tag):
        return [f"tag {tag!r} must match {TAG.pattern} (alphanumerics, '-', '.', '_'; "
                "starting and ending alphanumeric)"]
    errors: list[str] = []
    seen: dict[str, str] = {}
    for part in tag.split("-")[1:]:
        match = PLATFORM_PART.match(part)
        if match is None:
            errors.append(
                f"tag {tag!r}: part {part!r} must be letters followed by a version (e.g. cuda12.4, "
                "py3.11) or letters only; Backend.AI 23.09 reads every part after the first '-' "
                "as a platform tag")
            continue
        name = match["name"]
        if name in seen:
            errors.append(f"tag {tag!r}: platform tag name {name!r} appears twice "
                          f"({seen[name]!r} and {part!r})")
        seen[name] = part
    return errors


def validate_image_reference(ref: str) -> list[str]:
    """Errors for a full reference Backend.AI would not register (empty list when accepted)."""
    try:
        parsed = parse_image_reference(ref)
    except ImageReferenceError as exc:
        return [str(exc)]
    if parsed.tag is None:
        return [f"image reference {ref!r} has no tag; Backend.AI registers images by tag"]
    return tag_errors(parsed.tag)
