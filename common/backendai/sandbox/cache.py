"""A cache of the slow parts of a first `up`, for machines that start from nothing (CI): the Debian
13 root filesystem image and each line's virtualenv, as tarballs in MLPERF_BAI_SANDBOX_CACHE.

Keys name everything that went into them (the image's tag; the line's release, its constraints and
the sandbox folder, since a virtualenv holds its own absolute path), so a stale entry is never used.
Without the variable nothing is cached: a developer's sandbox keeps its virtualenv anyway.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from common.backendai.sandbox.layout import SandboxLayout

CACHE_ENV = "MLPERF_BAI_SANDBOX_CACHE"


def cache_dir() -> Path | None:
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else None


def _image_file(tag: str) -> Path | None:
    folder = cache_dir()
    return folder / f"image-{tag.replace('/', '_').replace(':', '_')}.tar" if folder else None


def load_image(tag: str) -> bool:
    """`docker load` the image from the cache; False when it is not there."""
    path = _image_file(tag)
    if path is None or not path.exists():
        return False
    return subprocess.run(["docker", "load", "-q", "-i", str(path)], capture_output=True).returncode == 0


def save_image(tag: str) -> None:
    path = _image_file(tag)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    if subprocess.run(["docker", "save", "-o", str(tmp), tag], capture_output=True).returncode == 0:
        tmp.replace(path)


def _venv_file(layout: SandboxLayout) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    key = hashlib.sha256("\n".join((*layout.line.packages, layout.line.constraints.read_text(),
                                     str(layout.venv))).encode()).hexdigest()[:16]
    return folder / f"venv-{layout.line.name}-{key}.tar"


def restore_venv(layout: SandboxLayout) -> bool:
    """Unpack the line's virtualenv into the sandbox folder; False when the cache has none."""
    path = _venv_file(layout)
    if path is None or not path.exists():
        return False
    return subprocess.run(["tar", "-C", str(layout.root), "-xf", str(path)], capture_output=True).returncode == 0


def save_venv(layout: SandboxLayout) -> None:
    path = _venv_file(layout)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    if subprocess.run(["tar", "-C", str(layout.root), "-cf", str(tmp), layout.venv.name],
                      capture_output=True).returncode == 0:
        tmp.replace(path)
