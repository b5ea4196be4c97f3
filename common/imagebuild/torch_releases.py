"""Newer PyTorch for the image matrix: per CUDA version, the newest torch/torchvision pair on PyTorch's index.

For each CUDA version of images/matrix.yaml, the newest pair PyTorch's index builds for it is compared
with the pair the matrix pins (`nox -s check_torch`; a scheduled GitHub workflow runs it weekly).

Where each fact comes from:
- the releases: PyPI's JSON API (`<pypi>/pypi/<project>/json`), final releases with a file not yanked;
- which releases are built for a CUDA version: that version's index page, the `torch_index_url` the
  images install from (`https://download.pytorch.org/whl/cu130/torch/`), its Linux x86_64 wheels tagged
  `+cu130` (or untagged), and for which Pythons (the matrix's Pythons for that CUDA version);
- which torch a torchvision build works with: the Requires-Dist of its wheel's core metadata, which the
  index publishes beside the wheel (PEP 658); a torchvision without metadata is reported, not paired;
- which CUDA versions the newest torch is built for: the index's page of all builds (`<index>/torch/`),
  so a CUDA version the matrix lacks is reported too.

Exit status, for a scheduled job: 1 when the matrix should change (a newer pair for one of its CUDA
versions, a CUDA version the newest torch is built for and the matrix lacks, or a pinned release the
index does not build for that CUDA version); 0 otherwise, also when a page could not be read (the report
says which and why); 2 when the matrix or the options are wrong.
"""

from __future__ import annotations

import argparse
import email.parser
import functools
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from common.imagebuild.matrix import MATRIX_FILE, Entry, MatrixError, load_matrix

PYPI = "https://pypi.org"
PYTORCH_INDEX = "https://download.pytorch.org/whl"
# The images are linux/amd64: the platform tags a wheel for them may carry.
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(40, 16, -1)), "manylinux2014_x86_64",
             "linux_x86_64")
CUDA_LOCAL = re.compile(r"^cu(?P<major>\d+)(?P<minor>\d)$")
EXIT_CURRENT, EXIT_CHANGE, EXIT_USAGE = 0, 1, 2


class PageError(RuntimeError):
    """A page could not be read or is not what PyPI / a PEP 503 index serves; the message names the URL."""


Fetch = Callable[[str], str]


def http_fetch(timeout: float) -> Fetch:
    session = requests.Session()
    session.headers["User-Agent"] = "mlperf-backendai check_torch"

    def fetch(url: str) -> str:
        try:
            response = session.get(url, timeout=timeout)
        except requests.RequestException as exc:
            raise PageError(f"{url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise PageError(f"{url}: HTTP {response.status_code}")
        return response.text

    return fetch


@dataclass(frozen=True)
class Wheel:
    filename: str
    url: str
    version: Version
    tags: frozenset[Tag]
    requires_python: SpecifierSet
    has_metadata: bool

    def supports(self, python: str) -> bool:
        return bool(self.tags & python_tags(python)) and self.requires_python.contains(Version(python))


@functools.cache
def python_tags(python: str) -> frozenset[Tag]:
    """The wheel tags pip accepts for CPython `python` (e.g. "3.11") on linux/amd64."""
    major, minor = (int(part) for part in python.split("."))
    return frozenset([*cpython_tags((major, minor), abis=[f"cp{major}{minor}"], platforms=PLATFORMS),
                      *compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=PLATFORMS)])


def cuda_of(local: str | None) -> str | None:
    """`cu130` -> "13.0", `cu118` -> "11.8"; None for CPU/ROCm/XPU builds."""
    match = CUDA_LOCAL.match(local or "")
    return f"{int(match['major'])}.{match['minor']}" if match else None


def final_releases(fetch: Fetch, pypi: str, project: str) -> set[Version]:
    """Versions PyPI lists as released: not pre- or dev-releases, with at least one file not yanked."""
    url = f"{pypi.rstrip('/')}/pypi/{project}/json"
    try:
        releases = json.loads(fetch(url))["releases"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PageError(f"{url}: not PyPI's JSON for a project ({exc})") from exc
    found = set()
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if not version.is_prerelease and any(not f.get("yanked") for f in files or ()):
            found.add(version)
    if not found:
        raise PageError(f"{url}: lists no final release")
    return found


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str], str]] = []
        self._open: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = {k: v or "" for k, v in attrs}, []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, "".join(self._text).strip()))
            self._open = None


def index_wheels(fetch: Fetch, page: str) -> list[Wheel]:
    """The Linux x86_64 wheels a PEP 503 project page links to."""
    parser = _Anchors()
    parser.feed(fetch(page))
    wheels = []
    for attrs, text in parser.anchors:
        url = urljoin(page, attrs.get("href", "")).split("#", 1)[0]
        filename = text if text.endswith(".whl") else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        try:
            _, version, _, tags = parse_wheel_filename(filename)
            requires_python = SpecifierSet(attrs.get("data-requires-python", ""))
        except (InvalidWheelFilename, InvalidVersion, InvalidSpecifier):
            continue
        if any(tag.platform in PLATFORMS for tag in tags):
            wheels.append(Wheel(filename, url, version, frozenset(tags), requires_python,
                                has_metadata="data-core-metadata" in attrs or "data-dist-info-metadata" in attrs))
    return wheels


def torch_requirement(fetch: Fetch, wheel: Wheel) -> SpecifierSet | None:
    """What the wheel's core metadata asks of torch (empty: anything); None when the index has none."""
    if not wheel.has_metadata:
        return None
    metadata = email.parser.Parser().parsestr(fetch(wheel.url + ".metadata"), headersonly=True)
    for line in metadata.get_all("Requires-Dist") or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) == "torch" and "extra" not in str(requirement.marker or ""):
            return requirement.specifier
    return SpecifierSet()


@dataclass(frozen=True)
class CudaLine:
    """One CUDA version of the matrix: its pins, its index and the entries (by Python) built from them."""

    cuda: str
    torch: Version
    torchvision: Version
    index_url: str
    entries: Mapping[str, tuple[str, ...]]

    @property
    def local(self) -> str:
        return "cu" + self.cuda.replace(".", "")


def cuda_lines(entries: Sequence[Entry]) -> list[CudaLine]:
    by_cuda: dict[str, list[Entry]] = {}
    for entry in entries:
        by_cuda.setdefault(entry.cuda, []).append(entry)
    lines = []
    for cuda, group in by_cuda.items():
        names: dict[str, list[str]] = {}
        for entry in group:
            names.setdefault(entry.py, []).append(entry.name)
        first = group[0]
        lines.append(CudaLine(cuda, Version(first.torch), Version(first.torchvision),
                              first.torch_index_url.rstrip("/"),
                              {py: tuple(n) for py, n in sorted(names.items(), key=lambda kv: Version(kv[0]))}))
    return lines


@dataclass
class LineReport:
    line: CudaLine
    status: str = "current"  # current | newer | mismatch | unchecked
    newest: tuple[Version, Version] | None = None
    built: frozenset[Version] = frozenset()
    notes: list[str] = field(default_factory=list)

    @property
    def change(self) -> bool:
        return self.status in ("newer", "mismatch")


def _built(wheels: Sequence[Wheel], local: str, releases: set[Version]) -> dict[Version, list[Wheel]]:
    """Released versions with a wheel on this CUDA version's page, by public version: the wheels pip
    installs from it, tagged with this CUDA version or untagged (another tag is another build)."""
    built: dict[Version, list[Wheel]] = {}
    for wheel in wheels:
        public = Version(wheel.version.public)
        if wheel.version.local in (local, None) and public in releases:
            built.setdefault(public, []).append(wheel)
    return built


def _lacking(wheels: Sequence[Wheel], line: CudaLine) -> list[str]:
    """The line's Pythons none of these wheels installs on."""
    return [py for py in line.entries if not any(wheel.supports(py) for wheel in wheels)]


def _names(pythons: Sequence[str], line: CudaLine) -> str:
    return ", ".join(name for py in pythons for name in line.entries[py])


class _Pairing:
    """Which torchvision builds work with which torch builds, from the metadata (read once each)."""

    def __init__(self, fetch: Fetch, vision_built: Mapping[Version, Sequence[Wheel]], notes: list[str]) -> None:
        self.fetch, self.vision_built, self.notes = fetch, vision_built, notes
        self.requirements: dict[Version, SpecifierSet | None] = {}

    def requirement(self, vision: Version) -> SpecifierSet | None:
        if vision not in self.requirements:
            wheel = self.vision_built[vision][0]
            try:
                self.requirements[vision] = torch_requirement(self.fetch, wheel)
            except PageError as exc:
                self.requirements[vision] = None
                self.notes.append(f"torchvision {vision}: its metadata could not be read ({exc})")
            else:
                if self.requirements[vision] is None:
                    self.notes.append(f"torchvision {vision}: the index publishes no metadata for "
                                      f"{wheel.filename}, so which torch it needs is unknown")
        return self.requirements[vision]

    def works(self, vision: Version, torch_wheels: Sequence[Wheel]) -> bool:
        requirement = self.requirement(vision)
        return requirement is not None and any(requirement.contains(w.version, prereleases=True)
                                               for w in torch_wheels)

    def newest_for(self, torch_wheels: Sequence[Wheel]) -> Version | None:
        return next((v for v in sorted(self.vision_built, reverse=True) if self.works(v, torch_wheels)), None)


def check_line(fetch: Fetch, line: CudaLine, torch_releases: set[Version],
               vision_releases: set[Version]) -> LineReport:
    report = LineReport(line)
    try:
        torch_built = _built(index_wheels(fetch, f"{line.index_url}/torch/"), line.local, torch_releases)
        vision_built = _built(index_wheels(fetch, f"{line.index_url}/torchvision/"), line.local,
                              vision_releases)
    except PageError as exc:
        report.status = "unchecked"
        report.notes.append(f"not checked: {exc}")
        return report
    report.built = frozenset(torch_built)
    pairing = _Pairing(fetch, vision_built, report.notes)
    for project, pin, built in (("torch", line.torch, torch_built), ("torchvision", line.torchvision, vision_built)):
        if pin not in built:
            report.status = "mismatch"
            report.notes.append(f"the pinned {project} {pin} has no Linux x86_64 release on "
                                f"{line.index_url}/{project}/")
    if report.status != "mismatch":
        for project, pin, built in (("torch", line.torch, torch_built),
                                    ("torchvision", line.torchvision, vision_built)):
            if lacking := _lacking(built[pin], line):
                report.status = "mismatch"
                report.notes.append(f"the pinned {project} {pin} has no wheel for Python {', '.join(lacking)}: "
                                    f"{_names(lacking, line)} cannot be built")
        if pairing.requirement(line.torchvision) is not None \
                and not pairing.works(line.torchvision, torch_built[line.torch]):
            report.status = "mismatch"
            report.notes.append(f"the pinned torchvision {line.torchvision} asks for torch "
                                f"{pairing.requirement(line.torchvision)}, not {line.torch}")
    for torch in sorted(torch_built, reverse=True):
        vision = pairing.newest_for(torch_built[torch])
        if vision is not None:
            report.newest = (torch, vision)
            break
        if torch > line.torch:
            report.notes.append(f"torch {torch} is built, but no torchvision on the index works with it (yet)")
    if report.newest is None:
        return report
    torch, vision = report.newest
    lacking = _lacking(torch_built[torch], line)
    if lacking and torch != line.torch:
        report.notes.append(f"torch {torch} has no wheel for Python {', '.join(lacking)}: "
                            f"{_names(lacking, line)} would need an exclusion")
    if report.status == "current" and (torch > line.torch or (torch == line.torch and vision > line.torchvision)):
        report.status = "newer"
    return report


def new_cuda_versions(fetch: Fetch, index: str, newest: Version, known: set[str]) -> list[str]:
    """CUDA versions the newest torch has Linux x86_64 builds for on the index and the matrix lacks."""
    cudas = {cuda_of(w.version.local) for w in index_wheels(fetch, f"{index.rstrip('/')}/torch/")
             if Version(w.version.public) == newest}
    return sorted((c for c in cudas - known if c is not None), key=Version)


def render(report: LineReport) -> list[str]:
    line = report.line
    head = f"cuda {line.cuda}: torch {line.torch} / torchvision {line.torchvision}"
    pair = (f"torch {report.newest[0]} / torchvision {report.newest[1]}" if report.newest
            else f"no torch/torchvision pair for CUDA {line.cuda}")
    first = {"unchecked": head,
             "current": f"{head}: current, the newest pair {line.index_url} builds",
             "newer": f"{head}: NEWER on {line.index_url}: {pair}",
             "mismatch": f"{head}: NOT what {line.index_url} builds (newest there: {pair})"}[report.status]
    return [first] + [f"    {note}" for note in report.notes]


def check(matrix_path: Path, pypi: str, index: str, fetch: Fetch, out: Callable[[str], None]) -> int:
    lines = cuda_lines(load_matrix(matrix_path).entries)
    try:
        torch_releases = final_releases(fetch, pypi, "torch")
        vision_releases = final_releases(fetch, pypi, "torchvision")
    except PageError as exc:
        out(f"not checked: the release list could not be read: {exc}")
        return EXIT_CURRENT
    newest = max(torch_releases)
    out(f"newest releases on {pypi}: torch {newest}, torchvision {max(vision_releases)}")
    reports = [check_line(fetch, line, torch_releases, vision_releases) for line in lines]
    for report in reports:
        for text in render(report):
            out(text)
        if report.status != "unchecked" and newest not in report.built:
            out(f"    torch {newest}, the newest release, is not built for CUDA {report.line.cuda}")
    change = any(r.change for r in reports)
    try:
        added = new_cuda_versions(fetch, index, newest, {line.cuda for line in lines})
    except PageError as exc:
        out(f"CUDA versions of torch {newest} not checked: {exc}")
    else:
        for cuda in added:
            change = True
            out(f"NEW CUDA version: torch {newest} is built for CUDA {cuda} (cu{cuda.replace('.', '')}), "
                "which the matrix lacks")
    unchecked = [r.line.cuda for r in reports if r.status == "unchecked"]
    if change:
        out("images/matrix.yaml should change (exit 1)")
    elif unchecked:
        out(f"images/matrix.yaml: nothing newer found; not checked: CUDA {', '.join(unchecked)}")
    else:
        out("images/matrix.yaml takes the newest pair for every CUDA version")
    return EXIT_CHANGE if change else EXIT_CURRENT


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.imagebuild.torch_releases",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=Path, default=MATRIX_FILE)
    parser.add_argument("--pypi", default=PYPI, help=f"PyPI's base URL (default {PYPI})")
    parser.add_argument("--pytorch-index", default=PYTORCH_INDEX,
                        help=f"PyTorch's index, for the CUDA versions of the newest torch (default {PYTORCH_INDEX}); "
                             "each CUDA version's own page is the matrix's torch_index_url")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page (default 60)")
    args = parser.parse_args(argv)
    try:
        return check(args.matrix, args.pypi, args.pytorch_index, http_fetch(args.timeout),
                     lambda text: print(text, flush=True))
    except MatrixError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
