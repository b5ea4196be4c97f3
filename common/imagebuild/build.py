"""Build the matrix's images with the Docker SDK: the shared runtime, then the benchmark on top.

For each entry: images/Dockerfile FROM the entry's CUDA base (Python, PyTorch, service programs,
Backend.AI files) is tagged `mlperf-runtime:<version>-cuda<X.Y>-py<3.Z>`, then the benchmark's own
Dockerfile FROM that runtime gets the Backend.AI labels (images/labels.yaml, validated) and the OCI
labels, and both tags. The build log streams to stdout; the layer cache is reused. A failed entry
stops with its log and the others still build.

`--base-image` substitutes the base of every entry (for example a local Debian image with Python, when
no CUDA image can be pulled); `--pip-index-url` points pip at a mirror (a local wheelhouse).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import docker
from docker.errors import APIError, BuildError, DockerException

from common.imagebuild import matrix as m
from common.imagebuild.selection import Outcome, Target, add_selection_arguments, run_cli
from common.labels.dockerfile import inject_labels
from common.labels.rules import resolve_labels, validate_labels

RUNTIME_REPOSITORY = "mlperf-runtime"
TORCH_PIN = re.compile(r"(?:^|\s)torch==(?P<version>\S+)")


@dataclass(frozen=True)
class BuildOptions:
    """Knobs for building away from the real CUDA bases; None keeps the matrix's value."""

    base_image: str | None = None
    torch_requirement: str | None = None
    torch_index_url: str | None = None
    pip_index_url: str | None = None
    network_mode: str | None = None
    nocache: bool = False


class ImageBuildError(RuntimeError):
    """A docker build failed; the message names the entry, the step and the engine's error (the log
    above it has already been streamed)."""


def torch_requirement(entry: m.Entry, options: BuildOptions) -> str:
    return entry.torch_requirement if options.torch_requirement is None else options.torch_requirement


def image_labels(entry: m.Entry, target: Target, options: BuildOptions) -> dict[str, str]:
    """Backend.AI labels (refused when invalid) plus what is inside, as OCI and project labels."""
    labels = resolve_labels(entry.label_profile, entry.labels)
    validate_labels(labels).raise_for_errors(f"labels of entry {entry.name}")
    pin = TORCH_PIN.search(torch_requirement(entry, options))
    labels.update({
        "org.opencontainers.image.title": entry.repository,
        "org.opencontainers.image.version": target.matrix.version,
        "org.opencontainers.image.base.name": options.base_image or entry.base_image,
        m.BENCHMARK_LABEL: entry.benchmark,
        m.CUDA_LABEL: entry.cuda,
        m.DRIVER_LABEL: entry.driver,
        m.PYTHON_LABEL: entry.py,
        m.TORCH_LABEL: pin["version"] if pin else "none",
        m.ENTRYPOINTS_LABEL: ",".join(entry.entrypoints),
        m.SUBSTITUTED_LABEL: "true" if options.base_image else "false",
    })
    if target.commit:
        labels["org.opencontainers.image.revision"] = target.commit
    return labels


def stream_build(client: docker.APIClient, log: TextIO, what: str, **kwargs) -> str:
    """Run one build, echoing its output; returns the image id. The context is the repository unless a
    `fileobj` with `custom_context=True` brings its own (implementations/image.py)."""
    image_id = None
    chunks: Iterator[dict] = client.build(path=str(m.ROOT), rm=True, forcerm=True, decode=True, **kwargs)
    for chunk in chunks:
        if "stream" in chunk:
            log.write(chunk["stream"])
            log.flush()
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        if "error" in chunk:
            log.write(chunk["error"] + "\n")
            raise ImageBuildError(f"{what}: {chunk['error'].strip()}")
    if image_id is None:
        raise ImageBuildError(f"{what}: the engine reported no image id")
    return image_id


def build_entry(client: docker.APIClient, entry: m.Entry, target: Target, options: BuildOptions,
                log: TextIO = sys.stdout) -> str:
    """Build runtime and benchmark image for one entry; returns the benchmark image id."""
    labels = image_labels(entry, target, options)
    pip = {"PIP_INDEX_URL": options.pip_index_url} if options.pip_index_url else {}
    common = {"network_mode": options.network_mode, "nocache": options.nocache}
    runtime_tag = f"{RUNTIME_REPOSITORY}:{entry.tag(target.matrix.version)}"
    stream_build(client, log, f"entry {entry.name}: runtime image ({m.RUNTIME_DOCKERFILE})",
                  dockerfile=m.RUNTIME_DOCKERFILE, tag=runtime_tag, **common,
                  buildargs={"BASE_IMAGE": options.base_image or entry.base_image,
                             "PYTHON_VERSION": entry.py,
                             "TORCH_REQUIREMENT": torch_requirement(entry, options),
                             "TORCH_INDEX_URL": options.torch_index_url or entry.torch_index_url,
                             **pip})
    reference = target.reference(entry)
    # One LABEL instruction (the builder's `labels` option costs one step per label).
    labelled = inject_labels((m.ROOT / entry.dockerfile).read_text(), dict(sorted(labels.items())))
    with tempfile.TemporaryDirectory(prefix="mlperf-image-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(labelled.text)
        image_id = stream_build(client, log, f"entry {entry.name}: benchmark image ({entry.dockerfile})",
                                 dockerfile=str(dockerfile), tag=reference, **common,
                                 buildargs={"BASE_IMAGE": runtime_tag, **pip})
    immutable = target.immutable_reference(entry)
    if immutable:
        repository, _, tag = immutable.rpartition(":")
        client.tag(image_id, repository, tag)
    return image_id


def build_all(target: Target, options: BuildOptions, log: TextIO = sys.stdout) -> list[Outcome]:
    client = docker.APIClient()
    outcomes = []
    for entry in target.entries:
        print(f"\n== building {entry.name} -> {target.reference(entry)}", file=log, flush=True)
        started = time.monotonic()
        try:
            build_entry(client, entry, target, options, log)
        except ImageBuildError as exc:
            outcomes.append(Outcome(entry.name, False, str(exc)))
            continue
        except (APIError, BuildError, DockerException, ValueError) as exc:
            outcomes.append(Outcome(entry.name, False, f"entry {entry.name}: {exc}"))
            continue
        tags = [target.reference(entry), target.immutable_reference(entry)]
        outcomes.append(Outcome(entry.name, True, f"built in {time.monotonic() - started:.1f}s: "
                                + ", ".join(t for t in tags if t)))
    return outcomes


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-image", help="build every entry FROM this image instead of its CUDA base")
    parser.add_argument("--torch-requirement",
                        help="pip requirement(s) for PyTorch instead of the matrix's; '' installs none")
    parser.add_argument("--torch-index-url", help="index for PyTorch instead of the matrix's")
    parser.add_argument("--pip-index-url", help="a PyPI mirror for every pip install in the builds")
    parser.add_argument("--network", dest="network_mode",
                        help="network mode of the build containers (host reaches a mirror on 127.0.0.1)")
    parser.add_argument("--no-cache", action="store_true", help="ignore the layer cache")


def options_from(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(base_image=args.base_image, torch_requirement=args.torch_requirement,
                        torch_index_url=args.torch_index_url, pip_index_url=args.pip_index_url,
                        network_mode=args.network_mode, nocache=args.no_cache)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_images", description=__doc__.splitlines()[0])
    add_selection_arguments(parser)
    add_build_arguments(parser)
    parser.add_argument("--list", action="store_true", help="print the references and build nothing")

    def action(args: argparse.Namespace, target: Target) -> list[Outcome]:
        if args.list:
            return [Outcome(e.name, True, target.reference(e)) for e in target.entries]
        return build_all(target, options_from(args))

    return run_cli(argv, parser, action)


if __name__ == "__main__":
    sys.exit(main())
