"""What the sandbox needs on the machine: Debian's services and Backend.AI in its own virtualenv
(on the host's Python for 23.09, in the service container's for 26.x)."""

from __future__ import annotations

import os
import pwd
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from common.backendai.sandbox import cache, container
from common.backendai.sandbox.layout import SESSION_USER, SandboxLayout
from common.backendai.sandbox.lines import Line
from common.backendai.sandbox.machine import MACHINE_LOCK
from common.backendai.sandbox.processes import SandboxError

# Debian package behind each command the sandbox runs (debootstrap: 26.x's root filesystem).
APT_PACKAGES = {"redis-server": "redis-server", "etcd": "etcd-server",
                "psql": "postgresql", "dockerd": "docker.io", "debootstrap": "debootstrap"}


def postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda path: int(path.parent.parent.name))
    if not versions:
        raise SandboxError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return versions[-1].parent


def ensure_session_user() -> tuple[int, int]:
    """uid and gid the sandbox's sessions run as, a system user made once (root only).

    Not root: the kernel's dropbear refuses root logins (`-w`), so containers of a cluster session could
    not reach each other over SSH. The storage proxy runs as the same user, so the folders it creates
    are writable inside the sessions.
    """
    with MACHINE_LOCK:
        return _session_user()


def _session_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(SESSION_USER)
    except KeyError:
        if os.geteuid() != 0:
            raise SandboxError(f"the sandbox runs sessions as the system user {SESSION_USER}; create it as root "
                               f"(useradd --system --user-group {SESSION_USER})") from None
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--comment", "Backend.AI sandbox sessions", SESSION_USER],
                       check=True)
        entry = pwd.getpwnam(SESSION_USER)
    return entry.pw_uid, entry.pw_gid


def ensure_debian_packages() -> None:
    """apt-get install what is missing (--no-upgrade: leave installed packages as they are)."""
    with MACHINE_LOCK:
        _debian_packages()


def _debian_packages() -> None:
    missing = sorted({pkg for cmd, pkg in APT_PACKAGES.items() if shutil.which(cmd) is None})
    if not Path("/usr/lib/postgresql").is_dir():
        missing = sorted({*missing, "postgresql"})
    if not missing:
        return
    if os.geteuid() != 0:
        raise SandboxError(f"the sandbox needs the Debian packages {missing}; install them as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-upgrade", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def find_python(line: Line) -> str:
    """23.09 requires Python 3.11 exactly, which must be the host's."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == line.python:
        return sys.executable
    found = shutil.which(f"python{line.python}")
    if found is None:
        raise SandboxError(f"Backend.AI {line.release} needs python{line.python}; none on PATH")
    return found


def ensure_virtualenv(layout: SandboxLayout) -> None:
    """Backend.AI in the sandbox's own virtualenv, every package pinned by the line's constraints."""
    line = layout.line
    marker = layout.marker("install")
    if marker.exists() and marker.read_text().strip() == line.release:
        return
    if layout.venv.exists():
        shutil.rmtree(layout.venv)
    install = ["install", "--disable-pip-version-check", "-c", str(layout.root / "constraints.txt"),
               *line.packages]
    # the constraints file is read from the sandbox folder, which the service container sees too
    shutil.copy(line.constraints, layout.root / "constraints.txt")
    if line.in_container:
        steps = [container.exec_argv(layout, ["python3", "-m", "venv", str(layout.venv)]),
                 container.exec_argv(layout, [str(layout.bin / "pip"), *install])]
    else:
        steps = [[find_python(line), "-m", "venv", str(layout.venv)],
                 [str(layout.bin / "pip"), *install, "setuptools", "yarl"]]
    log = layout.log("install")
    if not cache.restore_venv(layout):
        with open(log, "wb") as out:
            for argv in steps:
                if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                    raise SandboxError(f"installing Backend.AI {line.release} failed; see {log}")
        cache.save_venv(layout)
    if not line.in_container:
        patch_agent_rlimits(layout)
    marker.write_text(line.release + "\n")


def rlimits_raisable() -> bool:
    """The 23.09 agent gives every container nofile=1048576 and memlock=unlimited; some machines
    (this project's CI VMs among them) forbid root to raise limits that high."""
    result = subprocess.run(["prlimit", "--nofile=1048576:1048576", "--memlock=-1:-1", "true"],
                            capture_output=True)
    return result.returncode == 0


def patch_agent_rlimits(layout: SandboxLayout) -> None:
    """Where the hard limits cannot be raised, runc refuses to start any container ("error setting
    rlimit type 7: operation not permitted"); lower the agent's hard-coded limits to the host's."""
    if rlimits_raisable():
        return
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    agent_py = layout.site_packages / "ai" / "backend" / "agent" / "docker" / "agent.py"
    text = agent_py.read_text()
    replacements = {
        '{"Name": "nofile", "Soft": 1048576, "Hard": 1048576}':
            f'{{"Name": "nofile", "Soft": {nofile}, "Hard": {nofile}}}',
        '{"Name": "memlock", "Soft": -1, "Hard": -1}':
            f'{{"Name": "memlock", "Soft": {memlock}, "Hard": {memlock}}}',
    }
    for old, new in replacements.items():
        if old not in text:
            raise SandboxError(f"{agent_py}: expected `{old}` to patch the container rlimits")
        text = text.replace(old, new)
    agent_py.write_text(text)
