"""A Debian 13 (trixie) container image with Python 3.13: the sandbox's root filesystem for the 26.x lines
(debootstrap, `docker import`, cached by tag), reused to prove the project installs and runs there."""

from __future__ import annotations

import tempfile
from pathlib import Path

from common.backendai.sandbox import container
from common.backendai.sandbox.layout import SandboxLayout
from common.backendai.sandbox.lines import line_of

from .docker_engine import ensure_docker_engine
from .system import ensure_commands


def ensure_python313_image() -> str:
    ensure_docker_engine()
    ensure_commands("debootstrap")
    work = Path(tempfile.mkdtemp(prefix="python313-image-"))
    (work / "logs").mkdir()
    return container.ensure_rootfs_image(SandboxLayout(work, line=line_of("26.9")))
