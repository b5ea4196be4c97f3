"""Start Debian's dockerd when no engine answers on the default socket; let it trust a test CA."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .system import HarnessError, ensure_commands, wait_until

STATE_DIR = Path("/tmp/mlperf-bai-harness")
CERTS_DIR = Path("/etc/docker/certs.d")


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


@contextlib.contextmanager
def engine_trusts(registry: str, ca: Path) -> Iterator[None]:
    """The engine verifies `registry`'s TLS against `ca` while the block runs (dockerd reads
    /etc/docker/certs.d/<host:port>/ca.crt on every connection; no restart)."""
    folder = CERTS_DIR / registry
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.crt").write_bytes(ca.read_bytes())
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
