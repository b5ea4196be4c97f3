"""Run batch jobs on a Backend.AI cluster and move files in and out of its virtual folders.

The cluster is whatever the standard BACKEND_* variables point at (BACKEND_ENDPOINT, BACKEND_ACCESS_KEY,
BACKEND_SECRET_KEY, optionally BACKEND_DOMAIN, BACKEND_GROUP): the local sandbox or a production cluster,
of any line from 23.09 to 26.9. The requests are the project's own (common/backendai/api.py), so the
client installs wherever Python 3.11 to 3.13 does; where the lines behave differently it asks the manager
for its release and follows that release's rules (common/backendai/server.py). Every failure becomes a
BackendAIError that says what Backend.AI answered and what to do about it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from common.backendai import batch, preflight, rescan, vfolders, watch
from common.backendai.api import API, APIConfig
from common.backendai.errors import (
    BackendAIError,
    BatchInterruptedError,
    BatchTimeoutError,
    ConfigurationError,
    CredentialsError,
    ImageNotRegisteredError,
    RequestRejectedError,
    SessionPendingError,
    SessionPreemptedError,
    SessionStartError,
    UnsupportedServerError,
)
from common.backendai.output import FramedCommand
from common.backendai.server import ACCEPT_ENV, Server
from common.registry.reference import parse_reference

__all__ = [
    "APIConfig", "BackendAIError", "BatchInterruptedError", "BatchJob", "BatchResult", "BatchTimeoutError",
    "ConfigurationError", "CredentialsError", "ImageNotRegisteredError", "RequestRejectedError",
    "SessionPendingError", "SessionPreemptedError", "SessionStartError", "api_config", "check_before_start",
    "delete_vfolder",
    "destroy_session", "download", "ensure_vfolder", "list_agents", "list_files", "list_tree", "live_sessions",
    "register_image", "run_batch", "server", "upload", "vfolder_names",
]
# The manager's own batch_timeout ends the session first; this is how much later the client gives up.
SERVER_TIMEOUT_GRACE = 60.0
# How long the scheduler may keep a session waiting, unless the job says: a run's own time limit says
# nothing about how long a busy cluster may queue it, and a fresh agent pulls the image first.
DEFAULT_START_TIMEOUT = 600.0
IMAGES_QUERY = ("query($is_operation: Boolean) { images(is_operation: $is_operation) "
                "{ name registry architecture tag digest size_bytes aliases } }")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchJob:
    """One batch session: the image, the command and what it gets."""

    image: str
    command: str
    resources: Mapping[str, str | int] = field(default_factory=lambda: {"cpu": 1, "mem": "2g"})
    shmem: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    # vfolder name -> mount path (None: /home/work/<name>)
    mounts: Mapping[str, str | None] = field(default_factory=dict)
    name: str | None = None
    architecture: str = "x86_64"
    timeout: float = 3600.0
    # Containers of the session (main1, sub1..): one per node in multi-node mode.
    cluster_size: int = 1
    cluster_mode: str = "single-node"
    # Seconds the scheduler may keep the session waiting before it is given up.
    start_timeout: float = DEFAULT_START_TIMEOUT
    # mounted read-only where the manager can (24.03+); read-write, with a warning, before
    read_only: Collection[str] = frozenset()
    # (mounted writable folder, path in it): the command's output also goes there, and is read from there
    # while it runs (what the agent keeps of a long run's log is capped).
    output_file: tuple[str, str] | None = None
    # The resource group (scaling group) to run in; None: the manager picks one the project may use.
    resource_group: str | None = None


@dataclass(frozen=True)
class BatchResult:
    session_id: str
    name: str
    exit_code: int
    status: str
    status_info: str
    # The command's own output (no kernel runner lines, escapes or CRs); the container log as it is.
    logs: str
    container_log: str = ""
    # The agent of each container, where the manager tells this key (it may hide agents from users).
    agents: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


def api_config(environ: Mapping[str, str] | None = None) -> APIConfig:
    """The cluster of the BACKEND_* variables, refusing to fall back to any public default."""
    return APIConfig.from_environ(environ)


@contextlib.contextmanager
def connect(config: APIConfig | None = None) -> Iterator[API]:
    """A connection to a manager of a release the client supports."""
    with API(config or api_config()) as api:
        problem = api.server.unsupported(os.environ.get(ACCEPT_ENV))
        if problem:
            raise UnsupportedServerError(problem)
        yield api


def server(config: APIConfig | None = None) -> Server:
    """The manager's release (and so the rules the client follows with it)."""
    with API(config or api_config()) as api:
        return api.server


def list_agents(config: APIConfig | None = None) -> list[dict[str, Any]]:
    """Agents with status and slots (superadmin keys only)."""
    query = ("query { agent_list(limit: 100, offset: 0) { items "
             "{ id status available_slots occupied_slots } } }")
    with connect(config) as api:
        items = api.gql(query, doing="listing agents")["agent_list"]["items"]
    for item in items:
        for key in ("available_slots", "occupied_slots"):  # JSON text from some releases
            item[key] = json.loads(item[key]) if isinstance(item[key], str) else item[key]
    return items


class _Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is."""


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C, SIGTERM and a closed terminal each end the wait (and so destroy the session).

    A process started in the background of a non-interactive shell (a script's `cmd &`, many CI runners)
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt: a run holding a cluster's GPUs
    would go on after its user pressed Ctrl-C. While a session runs, SIGINT is therefore handled whatever
    the process inherited."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def check_before_start(job: BatchJob, config: APIConfig | None = None,
                       say: Callable[[str], None] | None = None) -> None:
    """What would make the session fail or never start, refused before it holds anything (preflight.py)."""
    config = config or api_config()
    with connect(config) as api:
        _preflight(api, job, config, say)


def _preflight(api: API, job: BatchJob, config: APIConfig, say: Callable[[str], None] | None) -> None:
    preflight.check(api, preflight.Request(
        image=job.image, architecture=job.architecture, resources=job.resources, containers=job.cluster_size,
        resource_group=job.resource_group, project=config.group),
        say=say or (lambda message: log.warning("%s", message)))


def _folder_ids(api: API, job: BatchJob) -> dict[str, str]:
    """The id of the folder each mounted name means for this key (the one it owns, or the only one)."""
    return {name: vfolders.require(api, name).id for name in job.mounts}


def run_batch(job: BatchJob, config: APIConfig | None = None,
              on_event: Callable[[str], None] | None = None,
              on_output: Callable[[str], None] | None = None) -> BatchResult:
    """Create a batch session, wait for its command to finish, return exit code and output.

    `on_event` gets the session's status changes (pending, scheduled, ..., running, terminated),
    `on_output` each line of the command's output while it runs. Ctrl-C (or SIGTERM), the timeout,
    a preemption and a scheduler that never starts the session each destroy it before the error is raised.
    """
    name = job.name or f"batch-{uuid.uuid4().hex[:12]}"
    output_path = None
    if job.output_file is not None:
        folder, inside = job.output_file
        output_path = f"{job.mounts.get(folder) or f'/home/work/{folder}'}/{inside}"
    framed = FramedCommand(job.command, output_file=output_path)
    config = config or api_config()
    session_id = ""
    try:
        with connect(config) as api, interruptible():
            current = api.server
            _preflight(api, job, config, on_event)
            if job.read_only and not current.has("mount_options"):
                log.warning("%s mounts %s read-write: %s (not before)", current, ", ".join(sorted(job.read_only)),
                            current.rule("mount_options"))
            request = batch.SessionRequest(
                name=name, image=job.image, command=framed.startup_command(), resources=dict(job.resources),
                resource_opts={"shmem": job.shmem} if job.shmem else {}, env=dict(job.env), mounts=dict(job.mounts),
                read_only=frozenset(job.read_only), architecture=job.architecture, timeout=job.timeout,
                cluster_size=job.cluster_size, cluster_mode=job.cluster_mode, domain=config.domain,
                group=config.group, folder_ids=_folder_ids(api, job) if current.has("mount_by_id") else None,
                resource_group=job.resource_group)
            session_id = batch.create(api, request)
            limit = job.timeout + (SERVER_TIMEOUT_GRACE if current.has("batch_timeout") else 0)
            output = watch.Output(framed, on_output, job.output_file)
            try:
                ending = watch.follow(api, session_id, name=name, image=job.image, output=output, timeout=limit,
                                      start_timeout=job.start_timeout, on_event=on_event)
            except BaseException:  # Ctrl-C, SIGTERM, a lost connection: leave no session behind
                with contextlib.suppress(BaseException):
                    watch.destroy_and_wait(api, session_id)
                raise
            return _result(api, job, name, session_id, ending)
    except KeyboardInterrupt as interrupt:
        what = f"batch session {name} ({job.image}) was destroyed" if session_id else "nothing was started"
        raise BatchInterruptedError(f"interrupted ({interrupt or 'Ctrl-C'}): {what}") from None


def _result(api: API, job: BatchJob, name: str, session_id: str, ending: watch.Ending) -> BatchResult:
    final = ending.state
    info = str(final.get("status_info"))
    if not ending.ran and final.get("status") in ("CANCELLED", "ERROR"):
        raise SessionStartError(
            f"batch session {name} ({job.image}) never ran its command: {watch.failure_detail(final)}; status "
            f"{final.get('status')} ({info}). The agent's log (sandbox: <root>/logs/agent.log) has the details")
    if ending.exit_code == batch.TIMEOUT_EXIT_CODE or info == batch.TIMEOUT_REASON:
        raise BatchTimeoutError(f"batch session {name} ({job.image}) timed out: {api.server} ended it after its "
                                f"batch_timeout of {int(job.timeout)}s")
    exit_code = ending.exit_code
    if exit_code is None:
        exit_code = 0 if final.get("result") == "SUCCESS" else 1
    if final.get("status") == "ERROR" and exit_code == 0:
        exit_code = 1
    return BatchResult(session_id=session_id, name=name, exit_code=exit_code, status=str(final.get("result")),
                       status_info=info, logs=ending.output, container_log=ending.container_log,
                       agents=watch.agents(api, session_id))


def ensure_vfolder(name: str, host: str | None = None, config: APIConfig | None = None) -> None:
    """Create the virtual folder unless the key already owns a usable one of that name."""
    with connect(config) as api:
        vfolders.ensure(api, name, host)


def upload(name: str, files: Sequence[Path | str], basedir: Path, config: APIConfig | None = None) -> int:
    """Upload files (paths relative to `basedir`) into the virtual folder, keeping relative paths; bytes sent."""
    with connect(config) as api:
        vfolders.require(api, name)
        return vfolders.upload(api, name, [str(f) for f in files], Path(basedir).resolve())


def vfolder_names(config: APIConfig | None = None) -> set[str]:
    """Names of the virtual folders this key can use (not those on their way out)."""
    with connect(config) as api:
        return {folder.name for folder in vfolders.listing(api) if folder.status not in vfolders.LEAVING}


def list_tree(name: str, path: str = ".", config: APIConfig | None = None) -> dict[str, int]:
    """Every file under `path` in the folder (relative to the folder's root) with its size."""
    found: dict[str, int] = {}
    with connect(config) as api:
        pending = [path]
        while pending:
            current = pending.pop()
            for item in vfolders.list_dir(api, name, current):
                child = item["name"] if current in (".", "") else f"{current.rstrip('/')}/{item['name']}"
                if item.get("type") == "DIRECTORY":
                    pending.append(child)
                else:
                    found[child] = int(item.get("size", 0))
    return found


def list_files(name: str, path: str = ".", config: APIConfig | None = None) -> list[str]:
    with connect(config) as api:
        return [item["name"] for item in vfolders.list_dir(api, name, path)]


def download(name: str, files: Sequence[str], dest: Path, config: APIConfig | None = None) -> list[Path]:
    """Download files from the folder into `dest`, at their relative paths; a missing file is named with
    what its directory holds."""
    with connect(config) as api:
        for wanted in files:
            parent = str(Path(wanted).parent)
            present = {item["name"] for item in vfolders.list_dir(api, name, parent)}
            if Path(wanted).name not in present:
                raise BackendAIError(f"virtual folder {name} has no file {wanted} (it has: "
                                     f"{', '.join(sorted(present)) or 'nothing'} in {parent})")
        return [vfolders.download(api, name, wanted, dest / wanted) for wanted in files]


def delete_vfolder(name: str, config: APIConfig | None = None) -> None:
    """Delete the folder for good (from the trash too, and its row purged), so its name is free."""
    with connect(config) as api:
        vfolders.delete(api, name)


def live_sessions(config: APIConfig | None = None) -> list[str]:
    """Names of this key's sessions that have not ended (a run must leave none behind)."""
    query = "query { compute_session_list(limit: 100, offset: 0) { items { name status } } }"
    with connect(config) as api:
        items = api.gql(query, doing="listing sessions")["compute_session_list"]["items"]
    return [item["name"] for item in items if item["status"] not in batch.FINAL]


def destroy_session(name: str, config: APIConfig | None = None) -> None:
    with connect(config) as api:
        api.call("DELETE", f"/session/{name}", params={"forced": "true"}, doing=f"destroying session {name}")


def register_image(reference: str, architecture: str = "x86_64",
                   config: APIConfig | None = None) -> dict[str, Any]:
    """Rescan the image the way the manager's release allows (admin keys) and return the manager's
    record of it; its "scan" entry says what was rescanned."""
    with connect(config) as api:
        current = api.server
        scanned = rescan.scan(api, current, reference, architecture)
        repository = parse_reference(reference).repository
        ours = [error for error in scanned.errors if repository in error]
        for image in api.gql(IMAGES_QUERY, {"is_operation": False}, doing="listing images")["images"] or []:
            if _reference_of(image) == reference and image.get("architecture") == architecture:
                others = len(scanned.errors) - len(ours)
                note = f"; {others} other image(s) of the project failed to scan" if others else ""
                return {**image, "scan": scanned.how + note}
        raise ImageNotRegisteredError(_not_registered(current, reference, architecture, scanned, ours))


def _not_registered(server: Server, reference: str, architecture: str, scanned: rescan.Scan,
                    errors: list[str]) -> str:
    reasons = [f"the scan reported: {'; '.join(errors)}"] if errors else []
    if not server.has("single_docker_manifest"):
        reasons.append("it is not a manifest list / OCI index (this release scans nothing else)")
    reasons.append("its config blob lacks ai.backend.* labels, or an index entry carries annotations "
                   "(every release skips those: invoke images.relabel drops them)")
    if server.has("registries_in_database"):
        reasons.append(f"{server.rule('registries_in_database')}, and a project without a row is not scanned "
                       "(sandbox: invoke bai.sandbox-up --project PROJECT)")
    else:
        reasons.append("its registry is not configured in etcd (config/docker/registry)")
    return (f"{server} did not register {reference} for {architecture} ({scanned.how}). Possible "
            f"reasons: {'; '.join(reasons)}. The manager's log names the reason")


def _reference_of(image: Mapping[str, Any]) -> str:
    return f"{image.get('registry')}/{image.get('name')}:{image.get('tag')}"
