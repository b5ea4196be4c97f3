"""Run batch jobs on a Backend.AI cluster through the official client SDK (backend.ai-client 23.09).

The cluster is whatever the standard BACKEND_* variables point at (BACKEND_ENDPOINT, BACKEND_ACCESS_KEY,
BACKEND_SECRET_KEY, optionally BACKEND_ENDPOINT_TYPE, BACKEND_DOMAIN, BACKEND_GROUP): the local sandbox
or a production cluster. Every failure becomes a BackendAIError that says what Backend.AI answered and
what to do about it. Install with the `bai` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ai.backend.client.config import APIConfig
from ai.backend.client.exceptions import BackendAPIError, BackendClientError
from ai.backend.client.session import AsyncSession

from common.backendai.errors import (
    BackendAIError,
    BatchInterruptedError,
    BatchTimeoutError,
    ConfigurationError,
    CredentialsError,
    ImageNotRegisteredError,
    RequestRejectedError,
    SessionPendingError,
    SessionStartError,
)
from common.backendai.output import FramedCommand, OutputFollower

REQUIRED_ENV = ("BACKEND_ENDPOINT", "BACKEND_ACCESS_KEY", "BACKEND_SECRET_KEY")
FINAL_STATUSES = frozenset({"TERMINATED", "CANCELLED", "ERROR"})
SESSION_QUERY = ("query($id: UUID!) { compute_session(id: $id) "
                 "{ status status_info status_data result } }")
STATUS_POLL_SECONDS = 2.0
# Container logs are fetched this often while a session runs, for its output on the console.
OUTPUT_POLL_SECONDS = 3.0
NOT_STARTED = frozenset({"PENDING", "SCHEDULED"})
T = TypeVar("T")


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
    # Seconds the scheduler may keep the session waiting before it is given up (None: the timeout).
    start_timeout: float | None = None


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

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


def api_config(environ: Mapping[str, str] | None = None) -> APIConfig:
    """An SDK config from BACKEND_* variables, refusing to fall back to the SDK's public default."""
    environ = os.environ if environ is None else environ
    missing = [name for name in REQUIRED_ENV if not environ.get(name)]
    if missing:
        raise ConfigurationError(
            f"{', '.join(missing)} not set: export the BACKEND_* variables of your cluster "
            "(for the local sandbox: `invoke bai.sandbox-status` says how)")
    return APIConfig(endpoint=environ["BACKEND_ENDPOINT"],
                     endpoint_type=environ.get("BACKEND_ENDPOINT_TYPE", "api"),
                     access_key=environ["BACKEND_ACCESS_KEY"], secret_key=environ["BACKEND_SECRET_KEY"],
                     domain=environ.get("BACKEND_DOMAIN") or None,
                     group=environ.get("BACKEND_GROUP") or None)


def _describe(error: BackendAPIError) -> str:
    data = error.data if isinstance(error.data, Mapping) else {"title": str(error.data)}
    parts = [f"{error.status} {error.reason}".strip(), data.get("title"), data.get("msg")]
    return ": ".join(str(part) for part in parts if part)


def _translate(error: Exception, config: APIConfig, doing: str) -> BackendAIError:
    endpoint = str(config.endpoint)
    if isinstance(error, BackendAPIError):
        answer = _describe(error)
        if error.status == 401:
            return CredentialsError(
                f"{endpoint} rejected access key {config.access_key} while {doing} ({answer}); check "
                "BACKEND_ACCESS_KEY and BACKEND_SECRET_KEY, and that this machine's clock is right")
        return RequestRejectedError(f"{endpoint} refused {doing}: {answer}{_hint(answer)}")
    if isinstance(error, BackendClientError):
        return ConfigurationError(f"cannot reach Backend.AI at BACKEND_ENDPOINT={endpoint} while {doing}: "
                                  f"{error}; is the manager running (invoke bai.sandbox-status)?")
    return BackendAIError(f"{doing} failed: {error}")


def _hint(answer: str) -> str:
    lowered = answer.lower()
    if "unknown image" in lowered or "image not found" in lowered:
        return " (register the image first: invoke bai.register IMAGE)"
    if "minimum" in lowered or ("resource" in lowered and "small" in lowered):
        return " (request at least the image's ai.backend.resource.min.* values)"
    return ""


def _run(config: APIConfig | None, doing: str,
         work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    config = config or api_config()

    async def main() -> T:
        async with AsyncSession(config=config) as api:
            return await work(api)

    try:
        return asyncio.run(main())
    except BackendAIError:
        raise
    except (BackendAPIError, BackendClientError) as error:
        raise _translate(error, config, doing) from error


def list_agents(config: APIConfig | None = None) -> list[dict[str, Any]]:
    """Agents with status and slots (superadmin keys only)."""
    query = ("query { agent_list(limit: 100, offset: 0) { items "
             "{ id status available_slots occupied_slots } } }")

    async def work(api: AsyncSession) -> list[dict[str, Any]]:
        items = (await api.Admin.query(query, {}))["agent_list"]["items"]
        for item in items:
            for key in ("available_slots", "occupied_slots"):
                item[key] = json.loads(item[key]) if isinstance(item[key], str) else item[key]
        return items

    return _run(config, "listing agents", work)


def run_batch(job: BatchJob, config: APIConfig | None = None,
              on_event: Callable[[str], None] | None = None,
              on_output: Callable[[str], None] | None = None) -> BatchResult:
    """Create a batch session, wait for its command to finish, return exit code and output.

    `on_event` gets the session's lifecycle events, `on_output` each line of the command's output
    while it runs. Ctrl-C, the timeout and a scheduler that never starts the session each destroy
    it before the error is raised.
    """
    name = job.name or f"batch-{uuid.uuid4().hex[:12]}"
    framed = FramedCommand(job.command)

    async def work(api: AsyncSession) -> BatchResult:
        session = api.ComputeSession(name)
        # Subscribe before creating: the manager filters events by name and keeps no history,
        # and the exit code travels only in the session_failure event (23.09 stores none).
        async with session.listen_events(scope="*") as events:
            created = await api.ComputeSession.get_or_create(
                job.image, name=name, type_="batch", enqueue_only=True, no_reuse=True,
                startup_command=framed.startup_command(), resources=dict(job.resources),
                resource_opts={"shmem": job.shmem} if job.shmem else {}, envs=dict(job.env),
                mounts=list(job.mounts), mount_map={k: v for k, v in job.mounts.items() if v},
                cluster_size=job.cluster_size, cluster_mode=job.cluster_mode, architecture=job.architecture)
            follower = OutputFollower(framed)
            try:
                async with asyncio.timeout(job.timeout):
                    exit_code, failure = await _wait_for_exit(
                        api, session, created.id, events, on_event,
                        start_timeout=job.start_timeout or job.timeout,
                        follow=(lambda: _follow_output(session, follower, on_output)) if on_output else None)
            except TimeoutError:
                await _destroy_quietly(session)
                raise BatchTimeoutError(f"batch session {name} ({job.image}) timed out: it did not finish "
                                        f"within {job.timeout:.0f}s and was destroyed") from None
            except BaseException:  # Ctrl-C (cancellation), a lost connection: leave no session behind
                await _destroy_quietly(session)
                raise
        state = await _final_state(api, created.id)
        if failure is not None:
            raise SessionStartError(
                f"batch session {name} ({job.image}) never ran its command: {failure}; status "
                f"{state.get('status')} ({state.get('status_info')}). The agent's log (sandbox: "
                "<root>/logs/agent.log) has the details")
        container_log = (await session.get_logs()).get("result", {}).get("logs", "")
        if on_output is not None:
            for line in follower.feed(container_log):
                on_output(line)
        if exit_code is None:
            exit_code = framed.exit_status(container_log)
        if exit_code is None:
            exit_code = 0 if state.get("result") == "SUCCESS" else 1
        return BatchResult(session_id=str(created.id), name=name, exit_code=exit_code,
                           status=str(state.get("result")), status_info=str(state.get("status_info")),
                           logs=framed.program_output(container_log), container_log=container_log)

    try:
        return _run(config, f"running a batch session of {job.image}", work)
    except KeyboardInterrupt:
        raise BatchInterruptedError(f"interrupted: batch session {name} ({job.image}) was destroyed") from None


async def _destroy_quietly(session: Any) -> None:
    """Destroy a session that may already be gone; the caller's error matters more than this one."""
    with contextlib.suppress(BackendAPIError, BackendClientError):
        await session.destroy(forced=True)


async def _follow_output(session: Any, follower: OutputFollower, on_output: Callable[[str], None]) -> None:
    """Poll the container log and pass on the command's new lines (23.09 streams no output)."""
    while True:
        try:
            log = (await session.get_logs()).get("result", {}).get("logs", "")
        except (BackendAPIError, BackendClientError):
            log = ""
        for line in follower.feed(log):
            on_output(line)
        await asyncio.sleep(OUTPUT_POLL_SECONDS)


async def _wait_for_exit(api: AsyncSession, session: Any, session_id: Any, events: Any,
                         on_event: Callable[[str], None] | None, *, start_timeout: float,
                         follow: Callable[[], Awaitable[None]] | None = None) -> tuple[int | None, str | None]:
    """(exit code, None) once the session terminated, or (None, why) if it never started.

    Events carry the exit code; the status is polled beside them because a session cancelled
    before it started (failed pull, agent error) sends no event to the stream in 23.09. A session
    the scheduler keeps waiting longer than `start_timeout` is destroyed with the scheduler's reason.
    """
    outcome: dict[str, int] = {}

    async def read() -> None:
        async for event in events:
            if on_event is not None:
                on_event(event.event)
            if event.event in ("session_success", "session_failure"):
                code = (json.loads(event.data) if event.data else {}).get("exitCode")
                outcome["exit_code"] = code if isinstance(code, int) else int(event.event != "session_success")
            elif event.event == "session_terminated":
                return

    reader = asyncio.create_task(read())
    follower: asyncio.Task[None] | None = None
    waiting_since = asyncio.get_running_loop().time()
    try:
        while not (await asyncio.wait({reader}, timeout=STATUS_POLL_SECONDS))[0]:
            state = await _state(api, session_id)
            status = state.get("status")
            if status in ("CANCELLED", "ERROR"):
                return None, _failure_detail(state)
            if status in NOT_STARTED and asyncio.get_running_loop().time() - waiting_since > start_timeout:
                await _destroy_quietly(session)
                raise SessionPendingError(
                    f"the scheduler did not start session {session_id} within {start_timeout:.0f}s "
                    f"({_pending_reason(state)}); it was destroyed")
            if status == "RUNNING" and follow is not None and follower is None:
                follower = asyncio.create_task(follow())
            if status == "TERMINATED":
                await asyncio.wait({reader}, timeout=STATUS_POLL_SECONDS)
                break
    finally:
        reader.cancel()
        if follower is not None:
            follower.cancel()
    return outcome.get("exit_code"), None


def _pending_reason(state: Mapping[str, Any]) -> str:
    """The scheduler's last word on a waiting session, e.g. which predicate failed."""
    try:
        scheduler = json.loads(state.get("status_data") or "{}").get("scheduler", {})
    except json.JSONDecodeError:
        scheduler = {}
    failed = [f"{p.get('name')}: {p.get('msg')}" for p in scheduler.get("failed_predicates", []) if p.get("msg")]
    reason = "; ".join(failed) or scheduler.get("msg") or state.get("status_info") or "no reason given"
    return f"status {state.get('status')}: {reason}"


def _failure_detail(state: Mapping[str, Any]) -> str:
    """What the agent reported, e.g. DockerError(404, 'manifest ... not found')."""
    try:
        error = json.loads(state.get("status_data") or "{}").get("error", {})
    except json.JSONDecodeError:
        return str(state.get("status_info"))
    causes = [item.get("repr") for item in error.get("collection", []) if item.get("repr")]
    return "; ".join(causes) or error.get("repr") or str(state.get("status_info"))


async def _state(api: AsyncSession, session_id: Any) -> dict[str, Any]:
    return (await api.Admin.query(SESSION_QUERY, {"id": str(session_id)}))["compute_session"] or {}


async def _final_state(api: AsyncSession, session_id: Any) -> dict[str, Any]:
    """Status once the manager has recorded the end (it lags the events by a moment)."""
    for _ in range(50):
        state = await _state(api, session_id)
        if state.get("status") in FINAL_STATUSES:
            return state
        await asyncio.sleep(0.2)
    return state


def ensure_vfolder(name: str, host: str | None = None, config: APIConfig | None = None) -> None:
    """Create the virtual folder unless the key already owns one of that name."""
    async def work(api: AsyncSession) -> None:
        if any(folder["name"] == name for folder in await api.VFolder.list()):
            return
        await api.VFolder.create(name, host=host)

    _run(config, f"creating virtual folder {name}", work)


def upload(name: str, files: Sequence[Path | str], basedir: Path, config: APIConfig | None = None) -> None:
    """Upload files (paths relative to `basedir`) into the virtual folder, keeping relative paths.

    The SDK prints a line per file; that goes nowhere (callers show their own progress)."""
    basedir = Path(basedir).resolve()

    async def work(api: AsyncSession) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            await api.VFolder(name).upload([str(f) for f in files], basedir=basedir, recursive=True)

    _run(config, f"uploading to virtual folder {name}", work)


def vfolder_names(config: APIConfig | None = None) -> set[str]:
    """Names of the virtual folders this key can use."""
    async def work(api: AsyncSession) -> set[str]:
        return {folder["name"] for folder in await api.VFolder.list()}

    return _run(config, "listing virtual folders", work)


def list_tree(name: str, path: str = ".", config: APIConfig | None = None) -> dict[str, int]:
    """Every file under `path` in the folder (relative to the folder's root) with its size."""
    async def work(api: AsyncSession) -> dict[str, int]:
        folder, found, pending = api.VFolder(name), {}, [path]
        while pending:
            current = pending.pop()
            for item in (await folder.list_files(current))["items"]:
                child = item["name"] if current in (".", "") else f"{current.rstrip('/')}/{item['name']}"
                if item.get("type") == "DIRECTORY":
                    pending.append(child)
                else:
                    found[child] = int(item.get("size", 0))
        return found

    return _run(config, f"listing virtual folder {name}", work)


def list_files(name: str, path: str = ".", config: APIConfig | None = None) -> list[str]:
    async def work(api: AsyncSession) -> list[str]:
        return [item["name"] for item in (await api.VFolder(name).list_files(path))["items"]]

    return _run(config, f"listing virtual folder {name}", work)


def download(name: str, files: Sequence[str], dest: Path, config: APIConfig | None = None) -> list[Path]:
    """Download files from the folder into `dest`. Missing files are refused up front (the SDK
    would retry each for about 100 s)."""
    async def work(api: AsyncSession) -> list[Path]:
        folder = api.VFolder(name)
        for wanted in files:
            parent = str(Path(wanted).parent)
            present = {item["name"] for item in (await folder.list_files(parent))["items"]}
            if Path(wanted).name not in present:
                raise BackendAIError(f"virtual folder {name} has no file {wanted} (it has: "
                                     f"{', '.join(sorted(present)) or 'nothing'} in {parent})")
        for wanted in files:  # the SDK writes into existing folders only
            (dest / wanted).parent.mkdir(parents=True, exist_ok=True)
        await folder.download(list(files), basedir=dest)
        return [dest / wanted for wanted in files]

    return _run(config, f"downloading from virtual folder {name}", work)


def delete_vfolder(name: str, config: APIConfig | None = None) -> None:
    async def work(api: AsyncSession) -> None:
        await api.VFolder(name).delete()

    _run(config, f"deleting virtual folder {name}", work)


def live_sessions(config: APIConfig | None = None) -> list[str]:
    """Names of this key's sessions that have not ended (a run must leave none behind)."""
    query = "query { compute_session_list(limit: 100, offset: 0) { items { name status } } }"

    async def work(api: AsyncSession) -> list[str]:
        items = (await api.Admin.query(query, {}))["compute_session_list"]["items"]
        return [item["name"] for item in items if item["status"] not in FINAL_STATUSES]

    return _run(config, "listing sessions", work)


def destroy_session(name: str, config: APIConfig | None = None) -> None:
    async def work(api: AsyncSession) -> None:
        await api.ComputeSession(name).destroy(forced=True)

    _run(config, f"destroying session {name}", work)


def register_image(reference: str, architecture: str = "x86_64",
                   config: APIConfig | None = None) -> dict[str, Any]:
    """Rescan one image reference (admin keys) and return the manager's record of it."""
    async def work(api: AsyncSession) -> dict[str, Any]:
        answer = await api.Image.rescan_images(reference)
        if not answer.get("ok"):
            raise RequestRejectedError(f"the manager refused to rescan {reference}: {answer.get('msg')}")
        async with api.BackgroundTask(answer["task_id"]).listen_events() as events:
            async for event in events:
                if event.event in ("bgtask_failed", "bgtask_cancelled"):
                    raise RequestRejectedError(f"rescan of {reference} failed: {event.data}")
                if event.event == "bgtask_done":
                    break
        for image in await api.Image.list():
            if _reference_of(image) == reference and image.get("architecture") == architecture:
                return image
        raise ImageNotRegisteredError(
            f"the manager scanned {reference} but did not register it for {architecture}. A 23.09 "
            "manager skips images that are not a manifest list / OCI index, lack ai.backend.* labels "
            "in the config blob, or whose registry is not configured; its log names the reason")

    return _run(config, f"registering image {reference}", work)


def _reference_of(image: Mapping[str, Any]) -> str:
    return f"{image.get('registry')}/{image.get('name')}:{image.get('tag')}"
