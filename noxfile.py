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


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """All tests; pass pytest options after `--` (e.g. `-m "not slow"` for the fast set)."""
    session.install("-e", ".[train,dev]")
    session.run("python", "-m", "pytest", *session.posargs)
