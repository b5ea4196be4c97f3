"""A batch session's request as each Backend.AI release takes it, and what its events say.

The SDK's `get_or_create` cannot send what newer managers take (`batch_timeout`, mount options), so
the request is built here, for the manager's release, and sent through the SDK's signed `Request`.
The exit code travels in the session_success/session_failure event up to 25.12; since 25.13 the
events carry `exitCode: null` (the framed command's end marker has it, common/backendai/output.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ai.backend.client.request import Request

from common.backendai.server import Server

# The exit code Backend.AI's agent reports for a batch session its batch_timeout ended.
TIMEOUT_EXIT_CODE = -2
TIMEOUT_REASON = "task-timeout"


@dataclass(frozen=True)
class SessionRequest:
    """What run_batch asks for, in the terms of the manager it asks."""

    name: str
    image: str
    command: str
    resources: Mapping[str, str | int]
    resource_opts: Mapping[str, str]
    env: Mapping[str, str]
    mounts: Mapping[str, str | None]
    read_only: frozenset[str]
    architecture: str
    timeout: float
    cluster_size: int
    cluster_mode: str
    domain: str | None
    group: str | None

    def body(self, server: Server) -> dict[str, Any]:
        """The JSON of POST /session (API v7 names, which every line still accepts)."""
        config: dict[str, Any] = {
            "mounts": list(self.mounts), "mount_map": {k: v for k, v in self.mounts.items() if v},
            "environ": dict(self.env), "resources": dict(self.resources),
            "resource_opts": dict(self.resource_opts), "scalingGroup": None, "preopen_ports": None,
        }
        if self.read_only and server.has("mount_options"):
            config["mount_options"] = {name: {"permission": "ro"} for name in self.read_only}
        body: dict[str, Any] = {
            "name": self.name, "image": self.image, "architecture": self.architecture, "tag": None,
            "type": "batch", "enqueueOnly": True, "maxWaitSeconds": 0, "reuseIfExists": False,
            "startupCommand": self.command,
            "clusterSize": self.cluster_size, "clusterMode": self.cluster_mode,
            "domain": self.domain, "group": self.group, "config": config,
            "dependencies": None, "callback_url": None, "starts_at": None, "bootstrap_script": None,
            "owner_access_key": None,
        }
        if server.has("batch_timeout"):
            body["batch_timeout"] = max(1, int(self.timeout))
        return body


async def create(request: SessionRequest, server: Server) -> str:
    """Enqueue the session; its id."""
    rqst = Request("POST", "/session")
    rqst.set_json(request.body(server))
    async with rqst.fetch() as resp:
        return str((await resp.json())["sessionId"])


def event_session(data: str) -> dict[str, Any]:
    return json.loads(data) if data else {}
