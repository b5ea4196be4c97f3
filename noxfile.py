"""Nox sessions: lint, tests (and the image sessions, driven by images/matrix.yaml)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


# The whole suite runs as two shards at once (pytest-xdist; tests/conftest.py makes them): the Backend.AI line
# that trains, mostly waiting on its sessions, beside everything else; the slowest tests are listed at the end.
FULL_RUN = ("-n", "2", "--durations=25")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """All tests in two shards; pytest options after `--` replace them (e.g. `-m "not slow"` for the fast set)."""
    session.install("-e", ".[train,dev,bai,results]")
    session.run("python", "-m", "pytest", *(session.posargs or FULL_RUN))


# Image sessions: one venv with the light control plane (docker SDK, labels, registry client; no
# torch). The matrix is selected with options after `--`, never with a parametrize argument named
# `python` (nox would take it for the interpreter):
#   nox -s build_images -- --benchmark maskrcnn --cuda 12.4 --py 3.11 [--base-image IMG]
def _image_session(session: nox.Session, module: str) -> None:
    session.install("-e", ".")
    session.run("python", "-m", module, *session.posargs)


@nox.session(python=PYTHON)
def build_images(session: nox.Session) -> None:
    """Build the matrix's images (all, or --benchmark/--cuda/--py); see images/README.md."""
    _image_session(session, "common.imagebuild.build")


@nox.session(python=PYTHON)
def test_images(session: nox.Session) -> None:
    """Check built images against the Backend.AI image contract."""
    _image_session(session, "common.imagebuild.contract")


@nox.session(python=PYTHON)
def push_images(session: nox.Session) -> None:
    """Push built images and their manifest lists; credentials from env or --password-stdin."""
    _image_session(session, "common.imagebuild.push")


@nox.session(python=PYTHON)
def check_torch(session: nox.Session) -> None:
    """Newer torch/torchvision on PyTorch's index for the matrix's CUDA versions (exit 1: the matrix should change)."""
    _image_session(session, "common.imagebuild.torch_releases")
