"""Kill a process in the middle of writing a file, deterministically: its temporary name is a FIFO.

`kill_mid_write(target, code)` makes `<target>.part` (common.atomic's temporary name) a FIFO that the
test holds open, runs `code` in a child process, waits until the child has written its first bytes
there, and SIGKILLs it while it still has more to write than the pipe holds. A writer that does not go
through the temporary name never writes to the FIFO: that is reported, not waited for.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from common.atomic import part_path
from tests.conftest import REPO_ROOT


def kill_mid_write(target: Path, code: str) -> bytes:
    """The bytes the killed writer had written (the first of them) before its SIGKILL."""
    fifo = part_path(target)
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDWR)  # read-write: opening never blocks, and the writer's open does not either
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    writer = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env)
    try:
        while not select.select([reader], [], [], 0.5)[0]:
            if writer.poll() is not None:
                raise AssertionError(f"the writer ended (exit {writer.returncode}) without writing through {fifo}")
        first = os.read(reader, 4096)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        return first
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        os.close(reader)
