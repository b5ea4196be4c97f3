"""Fixtures for the real components the tests use; the harness starts them when missing."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.backendai.conftest import TRAINING_LINE
from tests.harness.base_image import ensure_base_image
from tests.harness.docker_engine import ensure_docker_engine
from tests.harness.registry import ensure_default_registry

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A running Docker engine (Debian's dockerd, started when none answers)."""
    ensure_docker_engine()


@pytest.fixture(scope="session")
def registry_host(docker_engine: None) -> str:
    """host:port of a plain-HTTP registry on 127.0.0.1 shared by the session's tests."""
    return ensure_default_registry()


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """Tag of the local Debian + python3 base image (built once per machine)."""
    return ensure_base_image()


@pytest.fixture
def driver_env() -> dict[str, str]:
    """Environment for child processes that import the project from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """The full run's two shards (`-n 2`, noxfile.py): the tests of the Backend.AI line that trains, which mostly
    wait on its sessions, beside everything else, each shard in collection order. Everything else stays in one shard
    because its modules share fixtures (a trained sample, built images) that a split would make twice."""
    if config.getoption("dist") != "load":  # `--dist loadfile` and the others keep xdist's own scheduling
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only where pytest-xdist runs the suite

    training = re.compile(rf"[\[-]{re.escape(TRAINING_LINE)}\]$")

    class Shards(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return f"backendai-{TRAINING_LINE}" if training.search(nodeid) else "main"

    return Shards(config, log)
