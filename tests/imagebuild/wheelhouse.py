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
import threading
import tomllib
from collections.abc import Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
REQUIREMENT_FILES = ("images/requirements-services.txt", "object_detection/requirements.txt",
                     "translation/requirements.txt")
BUILD_BACKEND = ("setuptools>=68", "wheel")
STAMP = ".complete"
PREFERRED_PORT = 47311


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
    if stamp.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(directory), "--only-binary=:all:",
                    "--python-version", "3.11", *wanted], check=True)
    write_simple_index(directory)
    stamp.touch()
    return directory


class WheelhouseServer:
    """http.server over the wheelhouse on 127.0.0.1, in a thread of the test process."""

    def __init__(self, directory: Path, port: int = PREFERRED_PORT) -> None:
        handler = partial(_QuietHandler, directory=str(directory))
        # The index URL is a build argument, hence part of the layer cache key: keep it stable.
        try:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def index_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"

    def __enter__(self) -> WheelhouseServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return
