"""Push built images and wrap each in a manifest list (Backend.AI before 24.09 scans nothing else).

For every selected entry, both tags (`<version>-cuda<X.Y>-py<3.Z>` and the immutable `...-git<sha>`)
are pushed by the Docker engine, then re-pointed at a one-entry manifest list built from the pushed
manifest (common.registry.client). Credentials: --username with the password on stdin
(--password-stdin), else REGISTRY_USERNAME/REGISTRY_PASSWORD, else docker's config; never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import docker
from docker.errors import DockerException

from common.imagebuild.selection import Outcome, Target, add_selection_arguments, run_cli
from common.labels.image_tag import parse_image_reference
from common.registry.auth import Credentials, find_credentials
from common.registry.client import RegistryClient
from common.registry.errors import RegistryError
from common.registry.manifests import platform_of_config, wrap_in_index


class ImagePushError(RuntimeError):
    """The engine refused a push; the message names the reference."""


def engine_push(client: docker.APIClient, reference: str, credentials: Credentials | None) -> str:
    """`docker push` through the engine; returns the pushed manifest digest."""
    repository, _, tag = reference.rpartition(":")
    auth = {"username": credentials.username, "password": credentials.password} if credentials else None
    digest = None
    for chunk in client.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in chunk:
            raise ImagePushError(f"push {reference}: {chunk['error'].strip()}")
        digest = chunk.get("aux", {}).get("Digest", digest)
    if digest is None:
        raise ImagePushError(f"push {reference}: the engine reported no digest")
    return digest


def publish_manifest_list(registry: RegistryClient, reference: str, digest: str) -> str:
    """Point the tag at a one-entry manifest list for the pushed manifest; returns the list's digest."""
    parsed = parse_image_reference(reference)
    manifest = registry.get_manifest(parsed.repository, digest)
    config = json.loads(registry.get_blob(parsed.repository, manifest.document["config"]["digest"]))
    index = wrap_in_index(manifest, platform_of_config(config))
    return registry.put_manifest(parsed.repository, parsed.tag or "", index)


def push_all(target: Target, credentials: Credentials | None, insecure: bool,
             ca_bundle: Path | None = None) -> list[Outcome]:
    engine = docker.APIClient()
    registry = RegistryClient(target.registry, credentials, insecure=insecure, ca_bundle=ca_bundle)
    outcomes = []
    for entry in target.entries:
        references = [r for r in (target.reference(entry), target.immutable_reference(entry)) if r]
        try:
            lines = []
            for reference in references:
                digest = engine_push(engine, reference, credentials)
                listed = publish_manifest_list(registry, reference, digest)
                print(f"{reference} image {digest} list {listed}", flush=True)
                lines.append(f"{reference}@{listed}")
        except (ImagePushError, RegistryError, DockerException) as exc:
            outcomes.append(Outcome(entry.name, False, f"entry {entry.name}: {exc}"))
            continue
        outcomes.append(Outcome(entry.name, True, "pushed " + ", ".join(lines)))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="push_images", description=__doc__.splitlines()[0])
    add_selection_arguments(parser)
    parser.add_argument("--username", default=os.environ.get("REGISTRY_USERNAME"),
                        help="registry user, env REGISTRY_USERNAME (a Harbor robot name contains '$')")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    parser.add_argument("--insecure", action="store_true",
                        default=os.environ.get("IMAGE_REGISTRY_INSECURE") == "1",
                        help="plain HTTP to the registry (env IMAGE_REGISTRY_INSECURE=1)")
    parser.add_argument("--ca-bundle", type=Path, help="PEM file of CAs to verify the registry's TLS against "
                        "(the Docker engine reads its own: /etc/docker/certs.d/<registry>/ca.crt)")

    def action(args: argparse.Namespace, target: Target) -> list[Outcome]:
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        credentials = find_credentials(target.registry, username=args.username, password=password)
        return push_all(target, credentials, args.insecure, args.ca_bundle)

    return run_cli(argv, parser, action)


if __name__ == "__main__":
    sys.exit(main())
