"""A small Debian base image with python3, built once per machine and cached by tag.

Real users build FROM CUDA images; tests substitute this one (no registry can be pulled from here).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from .docker_engine import ensure_docker_engine
from .system import HarnessError, ensure_commands

SUITE = "bookworm"
MIRROR = os.environ.get("HARNESS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# openssh-client: cluster sessions start the sub containers' workers over SSH.
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "bash", "passwd", "procps",
            "openssh-client")
# The tag names the package set, so a machine that cached an older base builds the new one.
BASE_IMAGE_TAG = ("mlperf-bai-test/debian-python:bookworm-py3.11-"
                  + hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:8])


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag],
                          capture_output=True).returncode == 0


def ensure_base_image(tag: str = BASE_IMAGE_TAG) -> str:
    """Debootstrap a minimal Debian with python3 and `docker import` it, unless the tag exists."""
    ensure_docker_engine()
    if image_exists(tag):
        return tag
    ensure_commands("debootstrap")
    with tempfile.TemporaryDirectory(prefix="base-image-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(rootfs), MIRROR],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise HarnessError(f"debootstrap {SUITE} failed:\n{result.stdout[-2000:]}"
                               f"{result.stderr[-2000:]}")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            subprocess.run(["find", str(rootfs / cache), "-type", "f", "-delete"], check=False)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "--change", 'CMD ["/bin/bash"]',
             "--change", "ENV LANG=C.UTF-8", "-", tag],
            stdin=tar.stdout, capture_output=True, text=True)
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise HarnessError(f"docker import of {tag} failed: {imported.stderr.strip()}")
    return tag
