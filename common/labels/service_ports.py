"""The `ai.backend.service-ports` grammar in the agent's strict (string) mode.

Mirrors ai.backend.common.service_ports.parse_service_ports as the agent calls it at session creation:
any malformed item fails the whole label (the manager's lenient rescan mode silently drops them, which
is exactly how a bad label slips through until a session fails to start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ITEM = re.compile(r"^(?P<name>[\w-]+):(?P<proto>\w+):(?P<ports>\[\d+(?:,\d+)*\]|\d+)(?:,|$)")
PROTOCOLS_23_09 = frozenset({"tcp", "http", "preopen"})
PROTOCOLS_SINCE_26_2 = frozenset({"vnc", "rdp"})
RESERVED_PORTS = frozenset({2000, 2001, 2002, 2003, 2200, 7681})


class ServicePortsError(ValueError):
    """The message is the agent's own wording, so users can match it to cluster logs."""


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    ports: tuple[int, ...]


def parse_service_ports(value: str, *, accept_newer_protocols: bool = False) -> list[ServicePort]:
    """Parse like the 23.09 agent; `accept_newer_protocols` admits vnc/rdp (26.2+ agents)."""
    protocols = PROTOCOLS_23_09 | (PROTOCOLS_SINCE_26_2 if accept_newer_protocols else frozenset())
    result: list[ServicePort] = []
    used: set[int] = set()
    rest = value
    while rest:
        match = ITEM.match(rest)
        if match is None:
            raise ServicePortsError("Invalid service-ports format")
        rest = rest[match.end():]
        name, proto = match["name"], match["proto"]
        ports = tuple(int(p) for p in match["ports"].strip("[]").split(","))
        if proto == "pty":
            continue
        if proto not in protocols:
            raise ServicePortsError(f"Unsupported service port protocol: {proto}")
        for port in ports:
            if port in used:
                raise ServicePortsError(f"The port {port} is already used by another service port.")
            if port <= 1024:
                raise ServicePortsError(
                    f"The service port number {port} must be larger than 1024 "
                    "to run without the root privilege.")
            if port >= 65535:
                raise ServicePortsError(f"The service port number {port} must be smaller than 65535.")
            if port in RESERVED_PORTS:
                raise ServicePortsError(
                    "The service ports 2000 to 2003, 2200 and 7681 are reserved for internal use.")
            used.add(port)
        result.append(ServicePort(name, proto, ports))
    return result
