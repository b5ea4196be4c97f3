"""Install Debian packages and wait for services; shared by the harness modules."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable

APT_PACKAGES = {
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "debootstrap": "debootstrap",
    "chromium": "chromium",
}


class HarnessError(RuntimeError):
    """A component the tests need could not be installed or started."""


def ensure_commands(*commands: str) -> None:
    """Install the Debian package behind each missing command (root only, as in CI)."""
    missing = [APT_PACKAGES[c] for c in commands if shutil.which(c) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise HarnessError(f"missing commands {commands}; install the Debian packages {missing}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
