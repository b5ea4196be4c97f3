"""Two sandboxes up at once share the swarm the first one started: the first one down must not leave it under
the other's multi-node sessions, and the last one down leaves it. A fake `docker` on PATH keeps the engine's swarm
state in a file, so the machine's own engine (and a sandbox on it) is not touched."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from common.backendai.sandbox import swarm
from common.backendai.sandbox.layout import SandboxLayout, SandboxPorts
from common.backendai.sandbox.lines import line_of

FAKE_DOCKER = """#!/bin/sh
state="$FAKE_SWARM_DIR/state"; [ -f "$state" ] || echo inactive > "$state"
echo "$*" >> "$FAKE_SWARM_DIR/calls"
case "$1 $2" in
  "info --format") cat "$state" ;;
  "swarm init") echo active > "$state"; touch "$FAKE_SWARM_DIR/gwbridge" ;;
  "swarm leave") echo inactive > "$state" ;;
  "network inspect") [ -f "$FAKE_SWARM_DIR/gwbridge" ] ;;
  "network rm") rm "$FAKE_SWARM_DIR/gwbridge" ;;
esac
"""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SWARM_DIR", str(tmp_path))
    monkeypatch.setattr(swarm, "USERS", tmp_path / "swarm-users.json")
    return tmp_path


def layout(root: Path, line: str) -> SandboxLayout:
    return SandboxLayout(root / line, SandboxPorts(30000 + line_of(line).port_offset), line_of(line))


def test_the_last_sandbox_down_leaves_the_swarm_the_first_one_started(engine: Path) -> None:
    first, second = layout(engine, "26.4"), layout(engine, "26.9")
    assert "started" in swarm.ensure(first)
    assert "another sandbox" in swarm.ensure(second)
    assert not swarm.leave_if_ours(first)
    assert swarm.state() == "active"  # the second sandbox's multi-node sessions still need it
    assert swarm.leave_if_ours(second)
    assert swarm.state() == "inactive" and not (engine / "gwbridge").exists()
    assert (engine / "calls").read_text().count("swarm init") == 1


def test_a_swarm_that_was_there_before_any_sandbox_is_left_as_it_is(engine: Path) -> None:
    (engine / "state").write_text("active\n")
    sandbox = layout(engine, "26.9")
    assert "left as it is" in swarm.ensure(sandbox)
    assert not swarm.leave_if_ours(sandbox)
    assert swarm.state() == "active" and "swarm leave" not in (engine / "calls").read_text()
