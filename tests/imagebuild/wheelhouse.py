"""A local PyPI mirror for image builds: wheels downloaded once on the host, served as a PEP 503 index.

Build containers cannot reach PyPI here (and should not need to in tests); pip inside the build gets
`--index-url http://127.0.0.1:<port>/simple/` with the build on the host network.
"""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

from common.imagebuild.matrix import ROOT

TORCH_CPU = "torch==2.13.0+cpu"
# PyTorch with torchvision from PyPI, for the test images (the CUDA 13.0 build; it runs on the CPU here).
# PyPI's torchvision does not load beside the CPU-only torch build.
TORCH_WITH_VISION = ("torch==2.14.1", "torchvision==0.29.1")
TORCH_WITH_VISION_CUDA = "13.0"
# Their wheelhouse, shared by the image tests and the sandbox tests: the same index URL (a build
# argument) lets both suites' builds share the runtime layers in the engine's cache.
TRAINING_WHEELHOUSE = Path("/tmp/mlperf-bai-harness/wheelhouse-training")
TRAINING_WHEELHOUSE_PORT = 47312
# Held around a build of the training images: test processes that run at once build them one after the
# other, so the second finds the first one's layers in the cache (two torch installs at once would each
# make their own layers, and the same tag would be pushed with two contents).
TRAINING_BUILD_LOCK = FileLock(TRAINING_WHEELHOUSE.with_name("training-build.lock"))
REQUIREMENT_FILES = ("images/requirements-services.txt", "object_detection/requirements.txt",
                     "translation/requirements.txt")
BUILD_BACKEND = ("setuptools>=68", "wheel")
STAMP = ".complete"
PREFERRED_PORT = 47311
# A file in the wheelhouse that names it: what answers on a port is this wheelhouse's server, not another's.
IDENTITY = ".wheelhouse"


def _project(filename: str) -> str:
    name = re.split(r"-\d", filename, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def write_simple_index(directory: Path) -> None:
    """simple/<project>/index.html pages pointing at ../../<file>, as pip expects from an index."""
    files = sorted(p.name for p in directory.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    projects: dict[str, list[str]] = {}
    for name in files:
        projects.setdefault(_project(name), []).append(name)
    for project, names in projects.items():
        page = directory / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="../../{html.escape(n)}">{html.escape(n)}</a><br>\n' for n in names)
        page.write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


def ensure_wheelhouse(directory: Path, *, torch: Sequence[str] = ()) -> Path:
    """Download what the images install for CPython 3.11, and `torch` (requirements), once; a stamp marks
    a complete download. A wheel pip cannot get fails here, loudly: the images are never built without it."""
    requirements = [arg for path in REQUIREMENT_FILES for arg in ("-r", str(ROOT / path))]
    # The project's own dependencies: the Dockerfiles `pip install` the project.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [*requirements, *project, *BUILD_BACKEND, *torch]
    contents = "\n".join([*wanted, *((ROOT / p).read_text() for p in REQUIREMENT_FILES)])
    stamp = directory / f"{STAMP}-{hashlib.sha256(contents.encode()).hexdigest()[:16]}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(directory.with_name(f"{directory.name}.lock")):  # another test process may be downloading
        if stamp.exists():
            return directory
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(directory), "--only-binary=:all:",
                        "--python-version", "3.11", *wanted], check=True)
        write_simple_index(directory)
        stamp.touch()
    return directory


def wheelhouse_index(directory: Path, port: int = PREFERRED_PORT, timeout: float = 30) -> str:
    """The index URL of the wheelhouse, served on 127.0.0.1:`port` by a detached `http.server` that outlives the
    test process, like the harness's registry: test processes that run at once (the suite's two shards) build
    with the same URL, a build argument and so part of the layer cache key, and none of them stops it under
    another's build."""
    url = f"http://127.0.0.1:{port}"
    marker = directory / IDENTITY
    marker.write_text(str(directory))
    if _serves(url, directory):
        return f"{url}/simple/"
    subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                      str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _serves(url, directory):
            return f"{url}/simple/"
        time.sleep(0.2)
    raise RuntimeError(f"no wheelhouse index for {directory} on 127.0.0.1:{port} after {timeout:.0f} s "
                       "(another program holds the port?)")


def _serves(url: str, directory: Path) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/{IDENTITY}", timeout=2) as answer:
            return answer.read().decode() == str(directory)
    except OSError:
        return False
