"""Run batch jobs on a Backend.AI cluster through the official client SDK (backend.ai-client 23.09).

The cluster is whatever the standard BACKEND_* variables point at (BACKEND_ENDPOINT, BACKEND_ACCESS_KEY,
BACKEND_SECRET_KEY, optionally BACKEND_ENDPOINT_TYPE, BACKEND_DOMAIN, BACKEND_GROUP): the local sandbox
or a production cluster, of any line from 23.09 to 26.9. The managers of the newer lines still accept
this SDK's API version (v7); where they behave differently the client asks the manager for its release
and follows that release's rules (common/backendai/server.py). Every failure becomes a BackendAIError
that says what Backend.AI answered and what to do about it. Install with the `bai` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import uuid
import warnings
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ai.backend.client.config import APIConfig
from ai.backend.client.exceptions import APIVersionWarning, BackendAPIError, BackendClientError
from ai.backend.client.session import AsyncSession

from common.backendai import batch, rescan, vfolders
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
from common.backendai.server import Server
from common.registry.reference import parse_reference

REQUIRED_ENV = ("BACKEND_ENDPOINT", "BACKEND_ACCESS_KEY", "BACKEND_SECRET_KEY")
FINAL_STATUSES = frozenset({"TERMINATED", "CANCELLED", "ERROR"})
SESSION_QUERY = ("query($id: UUID!) { compute_session(id: $id) "
                 "{ status status_info status_data result } }")
STATUS_POLL_SECONDS = 2.0
# How long a destroyed session may take to terminate before the client forces it (and then goes on).
GONE_WAIT_SECONDS = 60.0
# Container logs are fetched this often while a session runs, for its output on the console.
OUTPUT_POLL_SECONDS = 3.0
# Before the command runs: waiting for the scheduler, or placed but never brought up (26.9 leaves a
# session at CREATING for good when its agent refused it): --start-timeout ends both.
NOT_STARTED = frozenset({"PENDING", "SCHEDULED", "PREPARING", "PULLING", "PREPARED", "CREATING"})
# The manager's own batch_timeout ends the session first; this is how much later the client gives up.
SERVER_TIMEOUT_GRACE = 60.0
T = TypeVar("T")
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
    # Seconds the scheduler may keep the session waiting before it is given up (None: the timeout).
    start_timeout: float | None = None
    # mounted read-only where the manager can (24.09+); read-write, with a warning, before
    read_only: Collection[str] = frozenset()


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


def _translate(error: Exception, config: APIConfig, doing: str, server: Server | None) -> BackendAIError:
    where = str(server) if server else str(config.endpoint)
    if isinstance(error, BackendAPIError):
        answer = _describe(error)
        if error.status == 401:
            return CredentialsError(
                f"{where} rejected access key {config.access_key} while {doing} ({answer}); check "
                "BACKEND_ACCESS_KEY and BACKEND_SECRET_KEY, and that this machine's clock is right")
        return RequestRejectedError(f"{where} refused {doing}: {answer}{_hint(answer)}")
    if isinstance(error, BackendClientError):
        return ConfigurationError(f"cannot reach Backend.AI at BACKEND_ENDPOINT={config.endpoint} while "
                                  f"{doing}: {error}; is the manager running (invoke bai.sandbox-status)?")
    return BackendAIError(f"{doing} failed: {error}")


def _hint(answer: str) -> str:
    lowered = answer.lower()
    if "unknown image" in lowered or "image not found" in lowered or "no such image" in lowered:
        return " (register the image first: invoke bai.register IMAGE)"
    if "minimum" in lowered or ("resource" in lowered and "small" in lowered):
        return " (request at least the image's ai.backend.resource.min.* values)"
    return ""


async def _server(api: AsyncSession, config: APIConfig) -> Server:
    hello = await api.ComputeSession.hello()
    return Server(str(config.endpoint), str(hello.get("manager", "0.0")), str(hello.get("version", "")))


def _run(config: APIConfig | None, doing: str,
         work: Callable[[AsyncSession, Server], Awaitable[T]]) -> T:
    config = config or api_config()
    known: list[Server] = []

    async def main() -> T:
        async with AsyncSession(config=config) as api:
            known.append(await _server(api, config))
            return await work(api, known[0])

    try:
        with warnings.catch_warnings():
            # The SDK warns that newer managers speak a newer API version; speaking v7 is deliberate.
            warnings.simplefilter("ignore", APIVersionWarning)
            return asyncio.run(main())
    except BackendAIError:
        raise
    except (BackendAPIError, BackendClientError) as error:
        raise _translate(error, config, doing, known[0] if known else None) from error


def server(config: APIConfig | None = None) -> Server:
    """The manager's release (and so the rules the client follows with it)."""
    async def work(api: AsyncSession, found: Server) -> Server:
        return found

    return _run(config, "asking the manager for its version", work)


def list_agents(config: APIConfig | None = None) -> list[dict[str, Any]]:
    """Agents with status and slots (superadmin keys only)."""
    query = ("query { agent_list(limit: 100, offset: 0) { items "
             "{ id status available_slots occupied_slots } } }")

    async def work(api: AsyncSession, _: Server) -> list[dict[str, Any]]:
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
    sdk_config = config or api_config()
    request = batch.SessionRequest(
        name=name, image=job.image, command=framed.startup_command(), resources=dict(job.resources),
        resource_opts={"shmem": job.shmem} if job.shmem else {}, env=dict(job.env), mounts=dict(job.mounts),
        read_only=frozenset(job.read_only), architecture=job.architecture, timeout=job.timeout,
        cluster_size=job.cluster_size, cluster_mode=job.cluster_mode, domain=sdk_config.domain,
        group=sdk_config.group)

    async def work(api: AsyncSession, server: Server) -> BatchResult:
        if job.read_only and not server.has("mount_options"):
            log.warning("%s mounts %s read-write: %s (not before)", server, ", ".join(sorted(job.read_only)),
                        server.rule("mount_options"))
        async with contextlib.AsyncExitStack() as stack:
            # The manager keeps no event history: subscribe first where it allows (the exit code is
            # in the events there); since 25.13 it refuses to stream for a session not yet created.
            events = None
            if not server.has("events_need_session"):
                events = await stack.enter_async_context(api.ComputeSession(name).listen_events(scope="*"))
            session_id = await batch.create(request, server)
            # By id from here: newer managers find a finished session by id only.
            session = api.ComputeSession(session_id)
            if events is None:
                events = await stack.enter_async_context(api.ComputeSession(name).listen_events(scope="*"))
            follower = OutputFollower(framed)
            limit = job.timeout + (SERVER_TIMEOUT_GRACE if server.has("batch_timeout") else 0)
            try:
                async with asyncio.timeout(limit):
                    exit_code, failure = await _wait_for_exit(
                        api, session, session_id, events, on_event,
                        start_timeout=job.start_timeout or job.timeout,
                        follow=(lambda: _follow_output(session, follower, on_output)) if on_output else None)
            except TimeoutError:
                await _destroy_and_wait(api, session, session_id)
                raise BatchTimeoutError(f"batch session {name} ({job.image}) timed out: it did not finish "
                                        f"within {limit:.0f}s and was destroyed") from None
            except BaseException:  # Ctrl-C (cancellation), a lost connection: leave no session behind
                await _destroy_and_wait(api, session, session_id)
                raise
        state = await _final_state(api, session_id)
        if failure is not None:
            raise SessionStartError(
                f"batch session {name} ({job.image}) never ran its command: {failure}; status "
                f"{state.get('status')} ({state.get('status_info')}). The agent's log (sandbox: "
                "<root>/logs/agent.log) has the details")
        if exit_code == batch.TIMEOUT_EXIT_CODE or state.get("status_info") == batch.TIMEOUT_REASON:
            await _wait_gone(api, session_id)
            raise BatchTimeoutError(f"batch session {name} ({job.image}) timed out: {server} ended it after its "
                                    f"batch_timeout of {int(job.timeout)}s")
        container_log = (await session.get_logs()).get("result", {}).get("logs", "")
        if on_output is not None:
            for line in follower.feed(container_log):
                on_output(line)
        if exit_code is None:
            # 23.09 stores no exit code, and since 25.13 the events carry none: the end marker has it
            exit_code = framed.exit_status(container_log)
        if exit_code is None:
            exit_code = 0 if state.get("result") == "SUCCESS" else 1
        return BatchResult(session_id=session_id, name=name, exit_code=exit_code,
                           status=str(state.get("result")), status_info=str(state.get("status_info")),
                           logs=framed.program_output(container_log), container_log=container_log)

    try:
        return _run(sdk_config, f"running a batch session of {job.image}", work)
    except KeyboardInterrupt:
        raise BatchInterruptedError(f"interrupted: batch session {name} ({job.image}) was destroyed") from None


async def _destroy_quietly(session: Any, *, forced: bool = True) -> None:
    """Destroy a session that may already be gone; the caller's error matters more than this one."""
    with contextlib.suppress(BackendAPIError, BackendClientError):
        await session.destroy(forced=forced)


async def _destroy_and_wait(api: AsyncSession, session: Any, session_id: str) -> None:
    """Destroy the session as a user would and wait until it has terminated; force it only if it does
    not. A forced destroy frees the session's resources in the manager's books at once, while the agent
    frees them only once the containers are gone (seconds later for a training that takes its time to
    stop): on 26.9 the next run's session, placed in between, stayed at `creating` for good
    (`InsufficientResource` in the agent's log)."""
    await _destroy_quietly(session, forced=False)
    if not await _wait_gone(api, session_id):
        await _destroy_quietly(session, forced=True)
        await _wait_gone(api, session_id)


async def _wait_gone(api: AsyncSession, session_id: str) -> bool:
    deadline = asyncio.get_running_loop().time() + GONE_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        if (await _state(api, session_id)).get("status") in (*FINAL_STATUSES, None):
            return True
        await asyncio.sleep(1.0)
    log.warning("session %s had not terminated %.0fs after it was destroyed", session_id, GONE_WAIT_SECONDS)
    return False


async def _follow_output(session: Any, follower: OutputFollower, on_output: Callable[[str], None]) -> None:
    """Poll the container log and pass on the command's new lines (23.09 streams no output)."""
    while True:
        try:
            log_text = (await session.get_logs()).get("result", {}).get("logs", "")
        except (BackendAPIError, BackendClientError):
            log_text = ""
        for line in follower.feed(log_text):
            on_output(line)
        await asyncio.sleep(OUTPUT_POLL_SECONDS)


async def _wait_for_exit(api: AsyncSession, session: Any, session_id: str, events: Any,
                         on_event: Callable[[str], None] | None, *, start_timeout: float,
                         follow: Callable[[], Awaitable[None]] | None = None) -> tuple[int | None, str | None]:
    """(exit code or None, None) once the session terminated, or (None, why) if it never started.

    Only events of this session count (a name can be reused, and a manager that cannot find the
    name streams every session's). The status is polled beside them because a session cancelled
    before it started (failed pull, agent error) sends no event to the stream in 23.09, and because
    a stream opened after creation may have missed the end. A session the scheduler keeps waiting
    longer than `start_timeout` is destroyed with the scheduler's reason.
    """
    outcome: dict[str, int] = {}

    async def read() -> None:
        async for event in events:
            data = batch.event_session(event.data)
            if data.get("sessionId") not in (None, session_id):
                continue
            if on_event is not None:
                on_event(event.event)
            if event.event in ("session_success", "session_failure"):
                code = data.get("exitCode")
                if isinstance(code, int):
                    outcome["exit_code"] = code
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
                await _destroy_and_wait(api, session, session_id)
                raise SessionPendingError(
                    f"session {session_id} did not start within {start_timeout:.0f}s "
                    f"({_pending_reason(state)}); it was destroyed")
            if status == "RUNNING" and follow is not None and follower is None:
                follower = asyncio.create_task(follow())
            if status in ("TERMINATED", None):
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


async def _state(api: AsyncSession, session_id: str) -> dict[str, Any]:
    """The session's status; {"status": None} once the manager no longer has it (26.x answers
    404 for a session that is gone: that is its end, and the result comes from the events)."""
    try:
        return (await api.Admin.query(SESSION_QUERY, {"id": session_id}))["compute_session"] or {"status": None}
    except BackendAPIError as error:
        if error.status == 404:
            return {"status": None}
        raise


async def _final_state(api: AsyncSession, session_id: str) -> dict[str, Any]:
    """Status once the manager has recorded the end (it lags the events by a moment)."""
    for _ in range(50):
        state = await _state(api, session_id)
        if state.get("status") in FINAL_STATUSES or state.get("status") is None:
            return state
        await asyncio.sleep(0.2)
    return state


def ensure_vfolder(name: str, host: str | None = None, config: APIConfig | None = None) -> None:
    """Create the virtual folder unless the key already owns a usable one of that name."""
    async def work(api: AsyncSession, server: Server) -> None:
        await vfolders.ensure(api, server, name, host)

    _run(config, f"creating virtual folder {name}", work)


def upload(name: str, files: Sequence[Path | str], basedir: Path, config: APIConfig | None = None) -> None:
    """Upload files (paths relative to `basedir`) into the virtual folder, keeping relative paths.

    The SDK prints a line per file; that goes nowhere (callers show their own progress)."""
    basedir = Path(basedir).resolve()

    async def work(api: AsyncSession, _: Server) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            await api.VFolder(name).upload([str(f) for f in files], basedir=basedir, recursive=True)

    _run(config, f"uploading to virtual folder {name}", work)


def vfolder_names(config: APIConfig | None = None) -> set[str]:
    """Names of the virtual folders this key can use (not those on their way out)."""
    async def work(api: AsyncSession, _: Server) -> set[str]:
        return {folder["name"] for folder in await api.VFolder.list()
                if folder.get("status") not in vfolders.LEAVING}

    return _run(config, "listing virtual folders", work)


def list_tree(name: str, path: str = ".", config: APIConfig | None = None) -> dict[str, int]:
    """Every file under `path` in the folder (relative to the folder's root) with its size."""
    async def work(api: AsyncSession, _: Server) -> dict[str, int]:
        found: dict[str, int] = {}
        pending = [path]
        while pending:
            current = pending.pop()
            for item in await vfolders.list_dir(name, current):
                child = item["name"] if current in (".", "") else f"{current.rstrip('/')}/{item['name']}"
                if item.get("type") == "DIRECTORY":
                    pending.append(child)
                else:
                    found[child] = int(item.get("size", 0))
        return found

    return _run(config, f"listing virtual folder {name}", work)


def list_files(name: str, path: str = ".", config: APIConfig | None = None) -> list[str]:
    async def work(api: AsyncSession, _: Server) -> list[str]:
        return [item["name"] for item in await vfolders.list_dir(name, path)]

    return _run(config, f"listing virtual folder {name}", work)


def download(name: str, files: Sequence[str], dest: Path, config: APIConfig | None = None) -> list[Path]:
    """Download files from the folder into `dest`. Missing files are refused up front (the SDK
    would retry each for about 100 s)."""
    async def work(api: AsyncSession, _: Server) -> list[Path]:
        folder = api.VFolder(name)
        for wanted in files:
            parent = str(Path(wanted).parent)
            present = {item["name"] for item in await vfolders.list_dir(name, parent)}
            if Path(wanted).name not in present:
                raise BackendAIError(f"virtual folder {name} has no file {wanted} (it has: "
                                     f"{', '.join(sorted(present)) or 'nothing'} in {parent})")
        for wanted in files:  # the SDK writes into existing folders only
            (dest / wanted).parent.mkdir(parents=True, exist_ok=True)
        await folder.download(list(files), basedir=dest)
        return [dest / wanted for wanted in files]

    return _run(config, f"downloading from virtual folder {name}", work)


def delete_vfolder(name: str, config: APIConfig | None = None) -> None:
    """Delete the folder for good (from the trash too, where the manager has one), so its name is free."""
    async def work(api: AsyncSession, server: Server) -> None:
        await vfolders.delete(api, server, name)

    _run(config, f"deleting virtual folder {name}", work)


def live_sessions(config: APIConfig | None = None) -> list[str]:
    """Names of this key's sessions that have not ended (a run must leave none behind)."""
    query = "query { compute_session_list(limit: 100, offset: 0) { items { name status } } }"

    async def work(api: AsyncSession, _: Server) -> list[str]:
        items = (await api.Admin.query(query, {}))["compute_session_list"]["items"]
        return [item["name"] for item in items if item["status"] not in FINAL_STATUSES]

    return _run(config, "listing sessions", work)


def destroy_session(name: str, config: APIConfig | None = None) -> None:
    async def work(api: AsyncSession, _: Server) -> None:
        await api.ComputeSession(name).destroy(forced=True)

    _run(config, f"destroying session {name}", work)


def register_image(reference: str, architecture: str = "x86_64",
                   config: APIConfig | None = None) -> dict[str, Any]:
    """Rescan the image the way the manager's release allows (admin keys) and return the manager's
    record of it; its "scan" entry says what was rescanned."""
    async def work(api: AsyncSession, server: Server) -> dict[str, Any]:
        scanned = await rescan.scan(api, server, reference, architecture)
        repository = parse_reference(reference).repository
        ours = [error for error in scanned.errors if repository in error]
        for image in await api.Image.list():
            if _reference_of(image) == reference and image.get("architecture") == architecture:
                others = len(scanned.errors) - len(ours)
                note = f"; {others} other image(s) of the project failed to scan" if others else ""
                return {**image, "scan": scanned.how + note}
        raise ImageNotRegisteredError(_not_registered(server, reference, architecture, scanned, ours))

    return _run(config, f"registering image {reference}", work)


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
