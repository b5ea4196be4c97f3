"""Following one batch session from its creation to its end, by polling, as every line allows.

The manager's status (a GraphQL query by id) is polled every few seconds; its event streams are not used:
23.09 sends no event for a session cancelled before it started, 25.13+ refuses a stream before the session
exists and its events carry no exit code, so a stream would add a second source that is wrong somewhere.
The command's exit status comes from the framed command's end marker (common/backendai/output.py). The
output is read from its file in a mounted folder where there is one (only what it added since the last
read), else from the container log. A connection that drops for a while (a manager restart) does not
end the run: polling goes on until OUTAGE_SECONDS without an answer.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.backendai import batch, vfolders
from common.backendai.api import API, APIError
from common.backendai.errors import (
    BackendAIError,
    BatchTimeoutError,
    ConfigurationError,
    SessionPendingError,
    SessionPreemptedError,
)
from common.backendai.output import FileFollower, FramedCommand, OutputFollower

SESSION_QUERY = ("query($id: UUID!) { compute_session(id: $id) "
                 "{ status status_info status_data result } }")
AGENTS_QUERY = "query($id: UUID!) { compute_session(id: $id) { agent_ids } }"
STATUS_POLL_SECONDS = 2.0
OUTPUT_POLL_SECONDS = 3.0
# A container log is fetched whole: where there is no output file, it is polled this much less often.
LOG_POLL_SECONDS = 10.0
OUTAGE_SECONDS = 300.0
# How long a destroyed session may take to terminate before the client forces it (and then goes on).
GONE_WAIT_SECONDS = 60.0


@dataclass
class Ending:
    """How a session ended: its last state and what the client read of its command."""

    state: dict[str, Any]
    exit_code: int | None
    output: str
    container_log: str
    ran: bool


@dataclass
class Output:
    """Where the command's output is read from while it runs: its file in a folder, or the container log."""

    framed: FramedCommand
    on_output: Callable[[str], None] | None
    # (folder, path in the folder) of the output file
    file: tuple[str, str] | None

    def __post_init__(self) -> None:
        self.from_file = FileFollower(self.framed)
        self.from_log = OutputFollower(self.framed)
        self.next_read = 0.0
        self.growing: vfolders.GrowingFile | None = None

    def poll(self, api: API, session_id: str, *, final: bool = False, log: str | None = None) -> None:
        """Hand on the new lines (`log`: the container log, where the caller has just read it)."""
        now = time.monotonic()
        if not final and now < self.next_read:
            return
        self.next_read = now + (OUTPUT_POLL_SECONDS if self.file else LOG_POLL_SECONDS)
        if self.file:
            if self.growing is None:
                self.growing = vfolders.GrowingFile(api, *self.file)
            lines = self.from_file.feed(self.growing.read_from(self.from_file.offset))
            if final and not self.from_file.ended and log:
                # the file stopped short of its end marker: the rest is in the container log (which the agent
                # caps, so a long run's tail still arrives); found again after the lines the file gave
                rest = self.from_log.after(log, self.from_file.output)
                self.from_file.extend(rest)
                lines += rest
        else:
            lines = self.from_log.feed(container_log(api, session_id) if log is None else log)
        if self.on_output is not None:
            for line in lines:
                self.on_output(line)


def agents(api: API, session_id: str) -> tuple[str, ...]:
    """The agent of each of the session's containers (empty where the manager hides them from this key)."""
    try:
        found = api.gql(AGENTS_QUERY, {"id": session_id}, doing=f"asking where session {session_id} ran")
    except BackendAIError:
        return ()
    return tuple(str(agent) for agent in ((found.get("compute_session") or {}).get("agent_ids") or []) if agent)


def container_log(api: API, session_id: str) -> str:
    """The main container's log (the manager's copy once the session ended: capped by the agent)."""
    try:
        answer = api.call("GET", f"/session/{session_id}/logs", doing=f"reading the log of session {session_id}")
    except APIError:
        return ""
    return str(((answer or {}).get("result") or {}).get("logs") or "")


def state(api: API, session_id: str) -> dict[str, Any]:
    """The session's status; {"status": None} once the manager no longer has it (26.x answers 404)."""
    try:
        return api.gql(SESSION_QUERY, {"id": session_id}, doing=f"asking for session {session_id}"
                       )["compute_session"] or {"status": None}
    except APIError as error:
        if error.status == 404:
            return {"status": None}
        raise


def patient_state(api: API, session_id: str) -> dict[str, Any]:
    """state(), riding out a manager that does not answer for up to OUTAGE_SECONDS."""
    deadline = time.monotonic() + OUTAGE_SECONDS
    while True:
        try:
            return state(api, session_id)
        except ConfigurationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(STATUS_POLL_SECONDS)


def follow(api: API, session_id: str, *, name: str, image: str, output: Output, timeout: float,
           start_timeout: float, on_event: Callable[[str], None] | None) -> Ending:
    """Wait until the session ends; destroy it first when it overruns `timeout`, waits for the scheduler
    longer than `start_timeout` or is preempted. Raises for those; returns how it ended otherwise."""
    started = time.monotonic()
    last_status: str | None = None
    ran = False
    while True:
        current = patient_state(api, session_id)
        status = current.get("status")
        if status != last_status and status is not None and on_event is not None:
            on_event(status.lower())
        last_status = status or last_status
        if status in batch.RUNNING:
            ran = True
        if status in batch.PREEMPTED or (ran and status in batch.NOT_STARTED):
            destroy_and_wait(api, session_id)
            raise SessionPreemptedError(
                f"batch session {name} ({image}) was preempted mid-run (status {status}: "
                f"{current.get('status_info') or 'no reason given'}); it was destroyed. The run asked not to be "
                f"preempted: {api.server.rule('preemptible_sessions')}; ask the administrator which resource "
                "group runs without preemption")
        if status in batch.FINAL or (status is None and last_status is not None):
            break
        elapsed = time.monotonic() - started
        if not ran and (status is None or status in batch.NOT_STARTED) and elapsed > start_timeout:
            destroy_and_wait(api, session_id)
            raise SessionPendingError(f"session {session_id} did not start within {start_timeout:.0f}s "
                                      f"({pending_reason(current)}); it was destroyed")
        if elapsed > timeout:
            destroy_and_wait(api, session_id)
            raise BatchTimeoutError(f"batch session {name} ({image}) timed out: it did not finish within "
                                    f"{timeout:.0f}s and was destroyed")
        if ran:
            output.poll(api, session_id)
        time.sleep(STATUS_POLL_SECONDS)
    final = final_state(api, session_id) if status is not None else current
    log = container_log(api, session_id)
    output.poll(api, session_id, final=True, log=log)  # also for a command too short to be seen RUNNING
    exit_code = output.from_file.exit_code if output.file else None
    if exit_code is None:
        exit_code = output.framed.exit_status(log)
    text = output.from_file.output if output.file else output.framed.program_output(log)
    return Ending(state=final, exit_code=exit_code, output=text, container_log=log, ran=ran)


def final_state(api: API, session_id: str) -> dict[str, Any]:
    """Status once the manager has recorded the end (its result lags the status by a moment)."""
    current: dict[str, Any] = {"status": None}
    for _ in range(50):
        current = state(api, session_id)
        if current.get("status") in batch.FINAL or current.get("status") is None:
            return current
        time.sleep(0.2)
    return current


def destroy(api: API, session_id: str, *, forced: bool) -> None:
    """Destroy a session that may already be gone; the caller's error matters more than this one."""
    with contextlib.suppress(BackendAIError):
        api.call("DELETE", f"/session/{session_id}", params={"forced": "true" if forced else None},
                 doing=f"destroying session {session_id}")


def destroy_and_wait(api: API, session_id: str) -> None:
    """Destroy the session as a user would and wait until it has terminated; force it only if it does
    not. A forced destroy frees the session's resources in the manager's books at once, while the agent
    frees them only once the containers are gone (seconds later for a training that takes its time to
    stop): on 26.9 the next run's session, placed in between, stayed at `creating` for good."""
    destroy(api, session_id, forced=False)
    if not wait_gone(api, session_id):
        destroy(api, session_id, forced=True)
        wait_gone(api, session_id)


def wait_gone(api: API, session_id: str) -> bool:
    deadline = time.monotonic() + GONE_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            if state(api, session_id).get("status") in (*batch.FINAL, None):
                return True
        except BackendAIError:
            pass
        time.sleep(1.0)
    return False


def pending_reason(current: Mapping[str, Any]) -> str:
    """The scheduler's last word on a waiting session, e.g. which predicate failed."""
    try:
        scheduler = json.loads(current.get("status_data") or "{}").get("scheduler", {})
    except json.JSONDecodeError:
        scheduler = {}
    failed = [f"{p.get('name')}: {p.get('msg')}" for p in scheduler.get("failed_predicates", []) if p.get("msg")]
    reason = "; ".join(failed) or scheduler.get("msg") or current.get("status_info") or "no reason given"
    return f"status {current.get('status')}: {reason}"


def failure_detail(current: Mapping[str, Any]) -> str:
    """What the agent reported, e.g. DockerError(404, 'manifest ... not found')."""
    try:
        error = json.loads(current.get("status_data") or "{}").get("error", {})
    except json.JSONDecodeError:
        return str(current.get("status_info"))
    causes = [item.get("repr") for item in error.get("collection", []) if item.get("repr")]
    return "; ".join(causes) or error.get("repr") or str(current.get("status_info"))
