"""The lock around what every sandbox on a machine shares: Debian packages, the sessions' system user and
the Debian 13 root filesystem image. Two sandboxes brought up at once (two lines, or two checkouts' test
suites) take turns at these steps instead of racing apt, useradd or `docker import`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from filelock import FileLock

MACHINE_LOCK = FileLock(Path(tempfile.gettempdir()) / "mlperf-bai-sandbox-machine.lock")
