"""Python 3.13 for Backend.AI 26.x on a Debian 12 host: a Debian 13 root filesystem as a Docker image,
and one service container made from it that the manager, agent and storage proxy run in.

The container shares the host's network and process namespace and sees the sandbox folder at the
same path as the host does, so ports, pid files and every path in the configs mean the same inside
and outside; the agent drives the host's engine through its socket and its docker CLI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.backendai.sandbox import cache
from common.backendai.sandbox.layout import SESSION_USER, SandboxLayout
from common.backendai.sandbox.machine import MACHINE_LOCK
from common.backendai.sandbox.processes import SandboxError, last_error, recorded_pid, wait_for

SUITE = "trixie"
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "procps")
# The host's extra CAs (a TLS-intercepting proxy's, say) must be trusted inside, or pip fails there.
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
# Starts a daemon as the leader of its own process group (docker exec may have made it one already),
# records "pid start-time" (the host sees the same numbers: the
# container shares its pid namespace), sends its output to a log and becomes the daemon.
LAUNCHER = (
    "import os, sys\n"
    "pidfile, log, argv = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
    "if os.getpgid(0) != os.getpid(): os.setsid()\n"
    "start = open(f'/proc/{os.getpid()}/stat').read().rsplit(') ', 1)[1].split()[19]\n"
    "fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)\n"
    "os.dup2(fd, 1); os.dup2(fd, 2)\n"
    "tmp = pidfile + '.tmp'\n"
    "open(tmp, 'w').write(f'{os.getpid()} {start}\\n'); os.replace(tmp, pidfile)\n"
    "os.execv(argv[0], argv)\n"
)


def mirror() -> str:
    return os.environ.get("MLPERF_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def host_certificates() -> list[Path]:
    return sorted(HOST_CA_DIR.glob("*.crt")) if HOST_CA_DIR.is_dir() else []


def rootfs_image(python: str) -> str:
    """The image's tag names what went into it, so a changed package list or CA rebuilds it."""
    recipe = hashlib.sha256(" ".join((SUITE, *ROOTFS_PACKAGES)).encode())
    for cert in host_certificates():
        recipe.update(cert.read_bytes())
    return f"mlperf-bai-sandbox/{SUITE}-python{python}:{recipe.hexdigest()[:12]}"


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def ensure_rootfs_image(layout: SandboxLayout) -> str:
    """debootstrap trixie and `docker import` it, once per engine (cached by tag)."""
    with MACHINE_LOCK:
        return _rootfs_image(layout)


def _rootfs_image(layout: SandboxLayout) -> str:
    tag = rootfs_image(layout.line.python)
    if image_exists(tag) or cache.load_image(tag):
        return tag
    log = layout.log("rootfs")
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=layout.root) as tmp, open(log, "ab") as out:
        rootfs = Path(tmp) / "rootfs"
        steps = [["debootstrap", "--variant=minbase", f"--include={','.join(ROOTFS_PACKAGES)}", SUITE,
                  str(rootfs), mirror()]]
        for argv in steps:
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise SandboxError(f"building the Debian {SUITE} root filesystem failed at "
                                   f"`{' '.join(argv[:3])} ...`; see {log}")
        for cert in host_certificates():
            shutil.copy(cert, rootfs / "usr/local/share/ca-certificates" / cert.name)
        if subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], stdout=out,
                          stderr=subprocess.STDOUT).returncode != 0:
            raise SandboxError(f"update-ca-certificates in the {SUITE} root filesystem failed; see {log}")
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            subprocess.run(["find", str(rootfs / leftovers), "-type", "f", "-delete"], check=False)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "--change", "ENV LANG=C.UTF-8", "-", tag],
                                  stdin=tar.stdout, stdout=out, stderr=subprocess.STDOUT)
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise SandboxError(f"docker import of {tag} failed; see {log}")
    cache.save_image(tag)
    return tag


def container_running(name: str) -> bool:
    result = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", name],
                            capture_output=True, text=True)
    return result.stdout.strip() == "true"


def ensure_service_container(layout: SandboxLayout, image: str, session_ids: tuple[int, int]) -> None:
    """One long-lived container per sandbox; recreated when stopped (nothing lives in it but the
    processes: the virtualenv, configs and data are in the sandbox folder). The sessions' user is
    made in it too, with the host's ids: the storage proxy drops to it by name lookup."""
    name = layout.service_container
    if not container_running(name):
        start_service_container(layout, image)
    uid, gid = session_ids
    if subprocess.run(exec_argv(layout, ["getent", "passwd", str(uid)]), capture_output=True).returncode == 0:
        return
    commands = [["/usr/sbin/useradd", "--uid", str(uid), "--gid", str(gid), "--no-create-home", "--home-dir",
                 "/nonexistent", "--shell", "/usr/sbin/nologin", SESSION_USER]]
    if subprocess.run(exec_argv(layout, ["getent", "group", str(gid)]), capture_output=True).returncode != 0:
        commands.insert(0, ["/usr/sbin/groupadd", "--gid", str(gid), SESSION_USER])
    for command in commands:
        made = subprocess.run(exec_argv(layout, command), capture_output=True, text=True)
        if made.returncode != 0:
            raise SandboxError(f"cannot make the sessions' user in {name}: {(made.stderr or made.stdout).strip()}")


def start_service_container(layout: SandboxLayout, image: str) -> None:
    name = layout.service_container
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise SandboxError("the docker CLI is missing; install Debian's docker.io")
    argv = ["docker", "run", "-d", "--name", name, "--network", "host", "--pid", "host",
            "--label", f"mlperf-bai-sandbox={layout.root}",
            "-v", "/var/run/docker.sock:/var/run/docker.sock",
            # the agent shells out to the docker CLI (docker load of its runner images)
            "-v", f"{Path(docker_cli).resolve()}:/usr/local/bin/docker:ro",
            "-v", f"{layout.root}:{layout.root}", "-w", str(layout.cfg),
            image, "sleep", "infinity"]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise SandboxError(f"cannot start the service container {name}: {result.stderr.strip()}")


def remove_service_container(layout: SandboxLayout) -> None:
    subprocess.run(["docker", "rm", "-f", layout.service_container], capture_output=True)


def exec_argv(layout: SandboxLayout, argv: Sequence[str], *, env_file: Path | None = None,
              env: Mapping[str, str] | None = None, detach: bool = False) -> list[str]:
    """`argv` run inside the service container, in the sandbox's cfg folder, with its virtualenv first
    on PATH and pip trusting the CA bundle that includes the host's extra CAs."""
    command = ["docker", "exec", "-d" if detach else "-i", "-w", str(layout.cfg),
               "-e", f"PATH={layout.bin}:{SEARCH_PATH}", "-e", f"PIP_CERT={CA_BUNDLE}",
               "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1"]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    return [*command, layout.service_container, *argv]


def run_argv(layout: SandboxLayout, argv: Sequence[str]) -> list[str]:
    """`argv` in a container of its own made from the root filesystem image, with the sandbox folder:
    the sandbox's Python and virtualenv without its services (or its service container) running."""
    return ["docker", "run", "--rm", "-i", "-v", f"{layout.root}:{layout.root}", "-w", str(layout.root),
            "-e", f"PATH={layout.bin}:{SEARCH_PATH}", rootfs_image(layout.line.python), *argv]


def start_daemon_inside(layout: SandboxLayout, argv: Sequence[str], *, pidfile: Path, log: Path,
                        timeout: float = 30) -> int:
    """Start `argv` in the service container; returns its pid (the host's) once it is recorded."""
    pidfile.unlink(missing_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    launch = exec_argv(layout, ["python3", "-c", LAUNCHER, str(pidfile), str(log), *argv], detach=True)
    result = subprocess.run(launch, capture_output=True, text=True)
    if result.returncode != 0:
        raise SandboxError(f"cannot start `{' '.join(argv[:3])}` in {layout.service_container}: "
                           f"{result.stderr.strip()}")
    wait_for(pidfile.exists, timeout, f"{pidfile.name} to be written", log)
    pid = recorded_pid(pidfile)
    if pid is None:
        raise SandboxError(f"`{' '.join(argv[:3])}` exited at once: {last_error(log)} (see {log})")
    return pid
