"""The Backend.AI release lines the sandbox can bring up, and what differs between them.

23.09 (dead since its last release, 23.09.11 of April 2025, but still run) needs Python 3.11, which
is the host's; 26.x needs Python 3.13, which comes from a Debian 13 (trixie) root filesystem that
the services run in (one container, host network). Each line's virtualenv is pinned by its own
constraints file, a `pip freeze` of an install that passed the sandbox tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Line:
    name: str
    release: str
    python: str
    # Python from a Debian 13 container instead of the host (the host is Debian 12: Python 3.11)
    in_container: bool
    # added to the configured port base, so that one sandbox of each line can run side by side
    port_offset: int

    @property
    def constraints(self) -> Path:
        return HERE / f"constraints-{self.name}.txt"

    @property
    def templates(self) -> Path:
        """Config templates: one set per configuration format (26.4 and 26.9 share theirs)."""
        return HERE / "templates" / ("26" if self.in_container else self.name)

    @property
    def packages(self) -> tuple[str, ...]:
        names = ("manager", "agent", "storage-proxy", "client", "accelerator-mock")
        return tuple(f"backend.ai-{name}=={self.release}" for name in names)


LINES = {line.name: line for line in (
    Line("23.09", "23.9.10", "3.11", in_container=False, port_offset=0),
    Line("26.9", "26.9.6", "3.13", in_container=True, port_offset=2000),
    Line("26.4", "26.4.16", "3.13", in_container=True, port_offset=4000),
)}
# The newest line that passes the sandbox tests.
DEFAULT_LINE = "26.9"


def line_of(name: str) -> Line:
    """"26.9", "26.9.6" or "23.9" -> its Line; anything else is refused with the choices."""
    for line in LINES.values():
        if name in (line.name, line.release, line.release.rsplit(".", 1)[0]):
            return line
    raise ValueError(f"Backend.AI version {name!r}: the sandbox brings up {', '.join(LINES)}")
