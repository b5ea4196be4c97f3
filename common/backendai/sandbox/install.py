"""What the sandbox needs on the machine: Debian's services and Backend.AI in its own virtualenv."""

from __future__ import annotations

import os
import pwd
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from common.backendai.sandbox.layout import BACKEND_AI_VERSION, PYTHON_VERSION, SESSION_USER, SandboxLayout
from common.backendai.sandbox.processes import SandboxError

CONSTRAINTS = Path(__file__).resolve().parent / "constraints.txt"
BACKEND_AI_PACKAGES = tuple(f"backend.ai-{name}=={BACKEND_AI_VERSION}"
                            for name in ("manager", "agent", "storage-proxy", "client"))
# Debian package behind each command the sandbox runs.
APT_PACKAGES = {"redis-server": "redis-server", "etcd": "etcd-server",
                "psql": "postgresql", "dockerd": "docker.io"}


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


def find_python() -> str:
    """Backend.AI 23.09 requires Python 3.11 exactly."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON_VERSION:
        return sys.executable
    found = shutil.which(f"python{PYTHON_VERSION}")
    if found is None:
        raise SandboxError(f"Backend.AI {BACKEND_AI_VERSION} needs python{PYTHON_VERSION}; none on PATH")
    return found


def ensure_virtualenv(layout: SandboxLayout) -> None:
    """Backend.AI in the sandbox's own virtualenv, every package pinned by constraints.txt."""
    marker = layout.marker("install")
    if marker.exists():
        return
    if layout.venv.exists():
        shutil.rmtree(layout.venv)
    log = layout.log("install")
    with open(log, "wb") as out:
        steps = [
            [find_python(), "-m", "venv", str(layout.venv)],
            [str(layout.bin / "pip"), "install", "--disable-pip-version-check", "-c", str(CONSTRAINTS),
             *BACKEND_AI_PACKAGES, "setuptools", "yarl"],
        ]
        for argv in steps:
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise SandboxError(f"installing Backend.AI failed at `{' '.join(argv[:4])} ...`; see {log}")
    patch_agent_rlimits(layout)
    marker.write_text(BACKEND_AI_VERSION + "\n")


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
