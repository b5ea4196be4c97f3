"""PyPI's JSON API and PyTorch's wheel index as they look from outside, served on 127.0.0.1 from what a
test declares: releases (some yanked, some pre-releases) and the CUDA builds of each, with the core
metadata (PEP 658) beside each wheel the way download.pytorch.org publishes it."""

from __future__ import annotations

import hashlib
import html
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

PLATFORM = "manylinux_2_28_x86_64"


@dataclass
class Build:
    project: str
    version: str  # public version, e.g. "2.15.0"
    cuda: str  # e.g. "13.0"
    pythons: tuple[str, ...]  # CPython tags get one wheel each; () gives one py3-none wheel
    requires_torch: str | None = None  # Requires-Dist of a torchvision build
    metadata: bool = True
    requires_python: str | None = None  # the link's data-requires-python
    variant: str | None = None  # the local version label when not the CUDA version's ("cpu"; "" for none)

    @property
    def local(self) -> str:
        return "cu" + self.cuda.replace(".", "")

    @property
    def full_version(self) -> str:
        label = self.local if self.variant is None else self.variant
        return f"{self.version}+{label}" if label else self.version

    def filenames(self) -> list[str]:
        stem = f"{self.project}-{self.full_version}"
        if not self.pythons:
            return [f"{stem}-py3-none-{PLATFORM}.whl"]
        return [f"{stem}-cp{p.replace('.', '')}-cp{p.replace('.', '')}-{PLATFORM}.whl" for p in self.pythons]

    def metadata_text(self) -> str:
        lines = ["Metadata-Version: 2.1", f"Name: {self.project}", f"Version: {self.full_version}",
                 "Requires-Dist: numpy"]
        if self.requires_torch is not None:
            lines.append(f"Requires-Dist: torch{self.requires_torch}")
        lines.append('Requires-Dist: scipy; extra == "scipy"')
        return "\n".join(lines) + "\n\nlong description\n"


@dataclass
class PyTorchWorld:
    """Releases on PyPI and builds on the index; `missing` paths answer 404, as an unreachable page."""

    releases: dict[str, dict[str, bool]] = field(default_factory=lambda: {"torch": {}, "torchvision": {}})
    builds: list[Build] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)

    def release(self, project: str, version: str, *, yanked: bool = False) -> None:
        self.releases[project][version] = yanked

    def build(self, project: str, version: str, cudas: tuple[str, ...], pythons: tuple[str, ...],
              requires_torch: str | None = None, *, metadata: bool = True, released: bool = True,
              requires_python: str | None = None, variant: str | None = None) -> None:
        if released:
            self.release(project, version)
        self.builds += [Build(project, version, cuda, pythons, requires_torch, metadata, requires_python, variant)
                        for cuda in cudas]

    def pages(self) -> dict[str, bytes]:
        pages: dict[str, bytes] = {}
        for project, versions in self.releases.items():
            releases = {v: [{"filename": f"{project}-{v}-py3-none-any.whl", "yanked": yanked}]
                        for v, yanked in versions.items()}
            pages[f"/pypi/{project}/json"] = json.dumps({"info": {"name": project}, "releases": releases}).encode()
        for folder in {f"/whl/{b.local}" for b in self.builds} | {"/whl"}:
            for project in ("torch", "torchvision"):
                builds = [b for b in self.builds if b.project == project and folder in ("/whl", f"/whl/{b.local}")]
                links = []
                for build in builds:
                    metadata = build.metadata_text().encode()
                    for filename in build.filenames():
                        path = f"/whl/{build.local}/{filename}"
                        attrs = (f' data-requires-python="{html.escape(build.requires_python)}"'
                                 if build.requires_python else "")
                        if build.metadata:
                            digest = hashlib.sha256(metadata).hexdigest()
                            attrs += f' data-dist-info-metadata="sha256={digest}" data-core-metadata="sha256={digest}"'
                            pages[f"{path}.metadata"] = metadata
                        href = html.escape(f"{quote(path)}#sha256={'0' * 64}")
                        links.append(f'<a href="{href}"{attrs}>{html.escape(filename)}</a><br/>')
                pages[f"{folder}/{project}/"] = ("<!DOCTYPE html>\n<html><body><h1>Links for "
                                                 f"{project}</h1>\n" + "\n".join(links) + "\n</body></html>\n").encode()
        return {path: body for path, body in pages.items() if path not in self.missing}


class PyTorchServer:
    """http.server on 127.0.0.1 in a thread, answering from a PyTorchWorld's pages."""

    def __init__(self, world: PyTorchWorld) -> None:
        pages = world.pages()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(unquote(self.path.split("?", 1)[0]))
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> PyTorchServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
