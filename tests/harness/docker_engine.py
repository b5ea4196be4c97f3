"""Start Debian's dockerd when no engine answers on the default socket."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .system import HarnessError, ensure_commands, wait_until

STATE_DIR = Path("/tmp/mlperf-bai-harness")


def engine_running() -> bool:
    result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                            capture_output=True, text=True)
    return result.returncode == 0 and bool(result.stdout.strip())


def ensure_docker_engine(timeout: float = 60) -> None:
    if engine_running():
        return
    ensure_commands("dockerd")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log = open(STATE_DIR / "dockerd.log", "ab")  # noqa: SIM115 - handed to the daemon
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    try:
        wait_until(engine_running, timeout, "dockerd")
    except HarnessError as exc:
        raise HarnessError(f"{exc}; see {STATE_DIR / 'dockerd.log'}") from exc
