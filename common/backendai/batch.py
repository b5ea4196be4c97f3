"""A batch session's request as each Backend.AI release takes it, and what its statuses mean.

Every key a release does not know is left out (23.09's and 24.09's request schemas refuse unknown keys):
`batch_timeout` from 24.12, mount options from 24.03, folders mounted by id from 25.12 (from 26.4.4 a
name resolves to the last folder row of that name, whoever owns it and whatever its status), and
`is_preemptible: false` from 26.3, where sessions are preemptible by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.backendai.api import API, API_VERSION
from common.backendai.server import Server

# Waiting for the scheduler, or placed and being brought up (26.9 leaves a session at CREATING for good
# when its agent refused it): --start-timeout ends these. DEPRIORITIZING and RESERVED are 26.8's.
NOT_STARTED = frozenset({"PENDING", "DEPRIORITIZING", "RESERVED", "SCHEDULED", "PREPARING", "PULLING",
                         "PREPARED", "CREATING"})
RUNNING = frozenset({"RUNNING", "RUNNING_DEGRADED", "RESTARTING"})
# 26.8's preemption: a victim is PREEMPTED, then TERMINATING or RESCHEDULING (back to PENDING, where its
# command would start again from nothing). For a benchmark either is the end of the run.
PREEMPTED = frozenset({"PREEMPTED", "RESCHEDULING"})
FINAL = frozenset({"TERMINATED", "CANCELLED", "ERROR"})
# What Backend.AI's agent reports for a batch session its batch_timeout ended.
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
    # folder name -> mount path (None: /home/work/<name>)
    mounts: Mapping[str, str | None]
    read_only: frozenset[str]
    architecture: str
    timeout: float
    cluster_size: int
    cluster_mode: str
    domain: str | None
    group: str | None
    # folder name -> its id, where the manager mounts by id
    folder_ids: Mapping[str, str] | None = None
    resource_group: str | None = None

    def body(self, server: Server) -> dict[str, Any]:
        """The JSON of POST /session (API v7 names, which every line still accepts)."""
        config: dict[str, Any] = {"environ": dict(self.env), "resources": dict(self.resources),
                                  "resource_opts": dict(self.resource_opts), "scalingGroup": self.resource_group,
                                  "preopen_ports": None}
        config.update(self._mounts(server))
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
        if server.has("preemptible_sessions"):
            body["is_preemptible"] = False
        return body

    def _mounts(self, server: Server) -> dict[str, Any]:
        by_id = server.has("mount_by_id")
        if by_id:
            missing = [name for name in self.mounts if name not in (self.folder_ids or {})]
            if missing:
                raise ValueError(f"{server} mounts folders by id; no id for {', '.join(missing)}")
        key = (lambda name: (self.folder_ids or {})[name]) if by_id else (lambda name: name)
        mounts: dict[str, Any] = {}
        paths = {key(name): path for name, path in self.mounts.items() if path}
        if by_id:
            mounts.update(mount_ids=[key(name) for name in self.mounts], mount_id_map=paths)
        else:
            mounts.update(mounts=list(self.mounts), mount_map=paths)
        if self.read_only and server.has("mount_options"):
            mounts["mount_options"] = {key(name): {"permission": "ro"} for name in self.read_only}
        return mounts


def create(api: API, request: SessionRequest) -> str:
    """Enqueue the session; its id. Folders by id are read only from a request of API v9 on (the
    manager validates the config by the version the request claims, and drops what that version lacks)."""
    server = api.server
    answer = api.call("POST", "/session", json_body=request.body(server),
                      doing=f"creating batch session {request.name} of {request.image}",
                      version=server.api_version if server.has("mount_by_id") else API_VERSION)
    return str(answer["sessionId"])
