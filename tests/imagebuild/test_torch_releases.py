"""`nox -s check_torch`: newer torch/torchvision for the matrix's CUDA versions, read from a PyPI JSON API and
a PyTorch wheel index served on 127.0.0.1 (tests/imagebuild/pytorch_index.py), shaped as the real ones."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from common.imagebuild.matrix import MATRIX_FILE, ROOT
from common.imagebuild.torch_releases import main
from tests.imagebuild.pytorch_index import PyTorchServer, PyTorchWorld

OLD = ("3.9", "3.10", "3.11", "3.12", "3.13")
NEW = ("3.10", "3.11", "3.12", "3.13", "3.14")
NEWEST = ("3.11", "3.12", "3.13", "3.14", "3.15")


def published() -> PyTorchWorld:
    """The releases images/matrix.yaml pins, built for the CUDA versions PyTorch's release matrix lists
    (images/README.md cites where), and older ones the check must not pick."""
    world = PyTorchWorld()
    world.build("torch", "2.6.0", ("11.8", "12.4", "12.6"), OLD)
    world.build("torchvision", "0.21.0", ("11.8", "12.4", "12.6"), OLD, "==2.6.0")
    world.build("torch", "2.7.1", ("11.8", "12.6", "12.8"), OLD)
    world.build("torchvision", "0.22.1", ("11.8", "12.6", "12.8"), OLD, "==2.7.1")
    world.build("torch", "2.11.0", ("12.6", "12.8", "13.0"), NEW)
    world.build("torchvision", "0.26.0", ("12.6", "12.8", "13.0"), NEW, "==2.11.0")
    world.build("torch", "2.14.1", ("12.6", "13.0", "13.2"), NEW)
    world.build("torchvision", "0.29.1", ("12.6", "13.0", "13.2"), NEW, "==2.14.1")
    world.build("torch", "2.15.0", ("13.0", "13.2"), NEWEST, requires_python=">=3.11")
    world.build("torchvision", "0.29.2", ("13.0", "13.2"), (), ">=2.14.0", requires_python=">=3.10,!=3.14.1")
    return world


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., tuple[Path, str]]]:
    """Serve a world and write the real matrix with its index URLs pointed at it (edited by `edit`);
    (that matrix, the server's URL)."""
    servers: list[PyTorchServer] = []

    def serve_world(world: PyTorchWorld, edit: Callable[[dict], None] = lambda data: None) -> tuple[Path, str]:
        server = PyTorchServer(world).__enter__()
        servers.append(server)
        data = yaml.safe_load(MATRIX_FILE.read_text())
        for cuda, spec in data["cuda"].items():
            spec["torch_index_url"] = f"{server.url}/whl/cu{cuda.replace('.', '')}"
        edit(data)
        matrix = tmp_path / f"matrix-{len(servers)}.yaml"
        matrix.write_text(yaml.safe_dump(data, sort_keys=False))
        return matrix, server.url

    yield serve_world
    for server in servers:
        server.__exit__()


def options(matrix: Path, url: str) -> list[str]:
    return ["--matrix", str(matrix), "--pypi", url, "--pytorch-index", f"{url}/whl", "--timeout", "10"]


@pytest.fixture
def run(serve, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run the check on a served world: (exit status, report), the server's URL written as http://local."""

    def run_check(world: PyTorchWorld, edit: Callable[[dict], None] = lambda data: None) -> tuple[int, str]:
        matrix, url = serve(world, edit)
        status = main(options(matrix, url))
        return status, capsys.readouterr().out.replace(url, "http://local")

    return run_check


def line(report: str, cuda: str) -> list[str]:
    """The report's lines about one CUDA version: its head and its indented notes."""
    lines = report.splitlines()
    start = next(i for i, text in enumerate(lines) if text.startswith(f"cuda {cuda}:"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    return lines[start:end]


def test_the_matrix_pins_the_newest_pair_built_for_each_cuda_version(run) -> None:
    status, report = run(published())
    assert status == 0, report
    pins = {"11.8": ("2.7.1", "0.22.1"), "12.4": ("2.6.0", "0.21.0"), "12.6": ("2.14.1", "0.29.1"),
            "12.8": ("2.11.0", "0.26.0"), "13.0": ("2.15.0", "0.29.2"), "13.2": ("2.15.0", "0.29.2")}
    for cuda, (torch, vision) in pins.items():
        assert line(report, cuda)[0] == (f"cuda {cuda}: torch {torch} / torchvision {vision}: current, the newest "
                                         f"pair http://local/whl/cu{cuda.replace('.', '')} builds"), report
    assert "    torch 2.15.0, the newest release, is not built for CUDA 12.6" in line(report, "12.6")
    assert report.splitlines()[0].endswith(": torch 2.15.0, torchvision 0.29.2")
    assert report.splitlines()[-1] == "images/matrix.yaml takes the newest pair for every CUDA version"


def test_a_newer_pair_for_one_cuda_version_exits_1_naming_it(run) -> None:
    world = published()
    world.build("torch", "2.15.1", ("13.0", "13.2"), NEWEST)
    world.build("torchvision", "0.29.3", ("13.0", "13.2"), (), ">=2.15.1")
    status, report = run(world)
    assert status == 1, report
    assert line(report, "13.0") == ["cuda 13.0: torch 2.15.0 / torchvision 0.29.2: NEWER on http://local/whl/cu130: "
                                    "torch 2.15.1 / torchvision 0.29.3"]
    assert "NEWER" in line(report, "13.2")[0] and "NEWER" not in line(report, "12.6")[0]
    assert report.splitlines()[-1] == "images/matrix.yaml should change (exit 1)"


def test_a_newer_torchvision_for_the_pinned_torch_counts(run) -> None:
    """A torchvision built later for an older CUDA version, whose metadata accepts the pinned torch."""
    world = published()
    world.build("torchvision", "0.29.2", ("12.6",), (), ">=2.14.0")
    status, report = run(world)
    assert status == 1
    assert line(report, "12.6")[0] == ("cuda 12.6: torch 2.14.1 / torchvision 0.29.1: NEWER on http://local/whl/cu126: "
                                       "torch 2.14.1 / torchvision 0.29.2"), report


def test_builds_that_do_not_make_a_usable_newer_pair_are_ignored(run) -> None:
    world = published()
    world.build("torch", "2.16.0rc1", ("13.0",), NEWEST, released=False)  # on the index, not released
    world.release("torch", "2.16.0rc1")  # a pre-release on PyPI
    world.build("torch", "2.15.2", ("13.0",), NEWEST)
    world.release("torch", "2.15.2", yanked=True)
    world.build("torch", "2.12.0", ("12.8",), NEW)  # built, but no torchvision for 12.8 works with it
    world.build("torchvision", "0.30.0", ("12.6",), (), "==2.16.0")  # asks for a torch not built for 12.6
    status, report = run(world)
    assert status == 0, report
    assert line(report, "12.8") == [
        "cuda 12.8: torch 2.11.0 / torchvision 0.26.0: current, the newest pair http://local/whl/cu128 builds",
        "    torch 2.12.0 is built, but no torchvision on the index works with it (yet)",
        "    torch 2.15.0, the newest release, is not built for CUDA 12.8"]
    assert "current" in line(report, "12.6")[0] and "current" in line(report, "13.0")[0]


def test_a_cuda_page_counts_its_own_and_untagged_builds_not_other_variants(run) -> None:
    world = published()
    world.build("torch", "2.14.2", ("12.6",), NEW, variant="cpu")
    world.build("torchvision", "0.29.3", ("12.6",), (), "==2.14.2", variant="cpu")
    status, report = run(world)
    assert status == 0 and "current" in line(report, "12.6")[0], report

    world.build("torch", "2.14.3", ("12.6",), NEW, variant="")
    world.build("torchvision", "0.29.4", ("12.6",), (), "==2.14.3", variant="")
    status, report = run(world)
    assert status == 1
    assert line(report, "12.6")[0].endswith("NEWER on http://local/whl/cu126: torch 2.14.3 / torchvision 0.29.4")


def test_a_newer_torch_without_a_python_the_matrix_builds_names_the_entries(run) -> None:
    world = published()
    world.build("torch", "2.16.0", ("13.0", "13.2"), ("3.12", "3.13", "3.14"))
    world.build("torchvision", "0.31.0", ("13.0", "13.2"), (), ">=2.16.0")
    status, report = run(world)
    assert status == 1
    assert ("    torch 2.16.0 has no wheel for Python 3.11: maskrcnn-cuda13.0-py3.11, gnmt-cuda13.0-py3.11 would "
            "need an exclusion") in line(report, "13.0")


def test_a_cuda_version_the_newest_torch_adds_is_reported(run) -> None:
    world = published()
    world.build("torch", "2.15.0", ("13.4",), NEWEST, released=False)
    status, report = run(world)
    assert status == 1
    assert ("NEW CUDA version: torch 2.15.0 is built for CUDA 13.4 (cu134), which the matrix lacks"
            in report.splitlines())


def test_a_pin_the_index_does_not_build_exits_1(run) -> None:
    def pin_too_new(data: dict) -> None:
        data["cuda"]["12.6"].update(torch="2.15.0", torchvision="0.29.2")

    status, report = run(published(), pin_too_new)
    assert status == 1
    assert line(report, "12.6") == [
        "cuda 12.6: torch 2.15.0 / torchvision 0.29.2: NOT what http://local/whl/cu126 builds (newest there: "
        "torch 2.14.1 / torchvision 0.29.1)",
        "    the pinned torch 2.15.0 has no Linux x86_64 release on http://local/whl/cu126/torch/",
        "    the pinned torchvision 0.29.2 has no Linux x86_64 release on http://local/whl/cu126/torchvision/",
        "    torch 2.15.0, the newest release, is not built for CUDA 12.6"]


def test_a_python_the_pinned_torch_has_no_wheel_for_exits_1(run) -> None:
    status, report = run(published(), lambda data: data.update(exclude=[]))
    assert status == 1
    assert line(report, "13.2") == [
        "cuda 13.2: torch 2.15.0 / torchvision 0.29.2: NOT what http://local/whl/cu132 builds (newest there: "
        "torch 2.15.0 / torchvision 0.29.2)",
        "    the pinned torch 2.15.0 has no wheel for Python 3.10: maskrcnn-cuda13.2-py3.10, gnmt-cuda13.2-py3.10 "
        "cannot be built"]


def test_a_python_the_pinned_torchvision_requires_python_excludes_exits_1(run) -> None:
    world = published()
    world.builds = [b for b in world.builds if (b.project, b.cuda) != ("torchvision", "13.2")]
    world.build("torchvision", "0.29.2", ("13.2",), (), ">=2.14.0", requires_python=">=3.12")
    status, report = run(world)
    assert status == 1
    assert line(report, "13.2")[1:] == [
        "    the pinned torchvision 0.29.2 has no wheel for Python 3.11: maskrcnn-cuda13.2-py3.11, "
        "gnmt-cuda13.2-py3.11 cannot be built"]


def test_an_unreachable_index_is_reported_and_fails_only_where_something_is_newer(run) -> None:
    world = published()
    world.missing.add("/whl/cu128/torch/")
    status, report = run(world)
    assert status == 0, report
    assert line(report, "12.8") == ["cuda 12.8: torch 2.11.0 / torchvision 0.26.0",
                                    "    not checked: http://local/whl/cu128/torch/: HTTP 404"]
    assert report.splitlines()[-1] == "images/matrix.yaml: nothing newer found; not checked: CUDA 12.8"

    world.build("torch", "2.15.1", ("13.0",), NEWEST)
    world.build("torchvision", "0.29.3", ("13.0",), (), ">=2.15.1")
    status, report = run(world)
    assert status == 1 and "NEWER" in line(report, "13.0")[0] and "not checked" in line(report, "12.8")[1]


def test_unreachable_pypi_says_so_and_exits_0(run) -> None:
    world = published()
    world.missing.add("/pypi/torchvision/json")
    status, report = run(world)
    assert status == 0
    assert report.splitlines() == ["not checked: the release list could not be read: "
                                   "http://local/pypi/torchvision/json: HTTP 404"]


def test_torchvision_without_metadata_is_not_paired(run) -> None:
    world = published()
    world.build("torchvision", "0.29.2", ("12.6",), (), ">=2.14.0", metadata=False)
    status, report = run(world)
    assert status == 0, report
    assert line(report, "12.6") == [
        "cuda 12.6: torch 2.14.1 / torchvision 0.29.1: current, the newest pair http://local/whl/cu126 builds",
        "    torchvision 0.29.2: the index publishes no metadata for "
        "torchvision-0.29.2+cu126-py3-none-manylinux_2_28_x86_64.whl, so which torch it needs is unknown",
        "    torch 2.15.0, the newest release, is not built for CUDA 12.6"]


def test_the_nox_session_entry_point_refuses_a_bad_matrix_with_exit_2(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX_FILE.read_text().replace("version:", "colour: blue\nversion:", 1))
    result = subprocess.run([sys.executable, "-m", "common.imagebuild.torch_releases", "--matrix", str(matrix),
                             "--pypi", "http://127.0.0.1:9", "--pytorch-index", "http://127.0.0.1:9"],
                            cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 2
    assert "top level: unknown field 'colour'" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_nox_session_the_weekly_workflow_runs_fails_only_when_the_matrix_should_change(serve, tmp_path) -> None:
    """`nox -s check_torch` in its own virtualenv, as .github/workflows/torch.yml runs it."""
    newer = published()
    newer.build("torch", "2.15.1", ("13.2",), NEWEST)
    newer.build("torchvision", "0.29.3", ("13.2",), (), ">=2.15.1")
    for world, status in ((published(), 0), (newer, 1)):
        result = subprocess.run([sys.executable, "-m", "nox", "-s", "check_torch", "--envdir", str(tmp_path / "nox"),
                                 "--", *options(*serve(world))], cwd=ROOT, capture_output=True, text=True,
                                check=False, timeout=600)
        assert result.returncode == status, result.stdout + result.stderr
        assert ("NEWER on" in result.stdout) == bool(status), result.stdout
