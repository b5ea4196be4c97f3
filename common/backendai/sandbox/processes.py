"""Daemons the sandbox starts: recorded by pid file, stopped only by the pid it recorded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class SandboxError(RuntimeError):
    """The sandbox cannot be brought up, inspected or stopped as asked."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    hint = f"; see {log}" if log else ""
    raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}{hint}")


def last_error(log: Path) -> str:
    """The last line of the log's last traceback (what killed the daemon), or its last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if "Error" in line.split(":", 1)[0]]
    return (errors or lines or ["empty log"])[-1]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """Clock ticks since boot at which `pid` started (field 22 of /proc/PID/stat)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def recorded_pid(pidfile: Path, marker: str | None = None) -> int | None:
    """The pid in `pidfile` if that process is alive and still the one recorded, so a recycled pid is
    never mistaken for ours: our pid files hold the start time too (Backend.AI's daemons rewrite
    their command line); a service's own pid file is checked against `marker` in its command line."""
    try:
        fields = pidfile.read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _alive(pid):
        return None
    if marker is None:
        return pid if len(fields) > 1 and _start_time(pid) == fields[1] else None
    return pid if marker in _cmdline(pid) else None


def start_daemon(argv: Sequence[str], *, pidfile: Path, log: Path, cwd: Path,
                 env: dict[str, str] | None = None) -> int:
    """Start `argv` in its own process group, output appended to `log`, pid recorded."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                   env=env, start_new_session=True)
    pidfile.write_text(f"{process.pid} {_start_time(process.pid)}\n")
    return process.pid


def stop_daemon(pidfile: Path, timeout: float = 30) -> bool:
    """SIGTERM the recorded process group, SIGKILL after `timeout`; False if nothing of ours ran."""
    pid = recorded_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        _signal_group(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    state = Path(f"/proc/{pid}/stat")
    try:
        return state.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
