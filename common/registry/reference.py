"""Image references addressed the way the registry API needs them: Docker Hub's `library/` prefix,
its API host, the default tag, and what goes after `/manifests/`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from common.labels.image_tag import ImageReference, parse_image_reference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class RegistryReference(ImageReference):
    @property
    def api_host(self) -> str:
        """Docker Hub serves its API from another host than its name."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def ref(self) -> str:
        """The digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> RegistryReference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> RegistryReference:
        return replace(self, digest=digest)


def parse_reference(text: str) -> RegistryReference:
    """Parse like the Docker CLI (common.labels.image_tag), then add Docker Hub's `library/` and `latest`."""
    parsed = parse_image_reference(text)
    repository = parsed.repository
    if parsed.registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    tag = parsed.tag or (None if parsed.digest else DEFAULT_TAG)
    return RegistryReference(parsed.registry, repository, tag, parsed.digest)
