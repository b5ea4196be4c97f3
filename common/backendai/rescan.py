"""Make a manager scan one image from its registry, the way its release allows.

- up to 25.5, `rescan_images(registry: <image reference>)` scans exactly that image;
- since 25.6 that argument is a registry *name*: a reference matches nothing and the task still ends
  "done". What can be scanned is a registry project (`registry` + `project`, the row of
  container_registries), so the image's whole project is rescanned, and the caller is told so;
- since 26.3 an image the manager already knows can be rescanned alone (POST /admin/images/rescan).
A scan that partly fails also ends "done", with its problems listed after "errors:" in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.backendai.api import API, APIError
from common.backendai.errors import RequestRejectedError
from common.backendai.server import Server
from common.registry.reference import parse_reference

RESCAN = "mutation($registry: String, $project: String) { rescan_images(registry: $registry, project: $project) " \
         "{ ok msg task_id } }"
RESCAN_2309 = "mutation($registry: String) { rescan_images(registry: $registry) { ok msg task_id } }"


@dataclass
class Scan:
    """What was scanned and what went wrong on the way."""

    how: str
    errors: list[str] = field(default_factory=list)


def parse_done_message(message: str) -> list[str]:
    """The errors of a bgtask_done message: "[ids]" when all went well, "result: [ids]\\nerrors: ..."
    when some failed (26.x; 23.09 sends no message)."""
    if "errors:" not in message:
        return []
    return [line.strip() for line in message.split("errors:", 1)[1].splitlines() if line.strip()]


def _wait(api: API, task_id: str, what: str) -> list[str]:
    for event in api.events("/events/background-task", {"task_id": task_id}, doing=f"following {what}"):
        if event.name in ("bgtask_failed", "bgtask_cancelled"):
            raise RequestRejectedError(f"{what} failed: {event.data}")
        if event.name in ("bgtask_done", "bgtask_partial_success"):
            return parse_done_message(str(event.json().get("message") or ""))
    return []


def _rescan(api: API, server: Server, what: str, **variables: str | None) -> list[str]:
    query = RESCAN if server.version >= (25, 1, 0) else RESCAN_2309
    answer = api.gql(query, variables, doing=what)["rescan_images"]
    if not answer.get("ok"):
        raise RequestRejectedError(f"{server} refused {what}: {answer.get('msg')}")
    return _wait(api, str(answer["task_id"]), what)


def _rescan_known(api: API, reference: str, architecture: str) -> str | None:
    """None when the manager does not know the image yet (404) or refuses (26.4.16 and 26.9.6
    answer 400 after scanning an image whose resource minimums are sizes: the reply cannot hold "1g")."""
    try:
        api.call("POST", "/admin/images/rescan", json_body={"canonical": reference, "architecture": architecture},
                 doing=f"rescanning {reference}")
    except APIError as error:
        if error.status in (400, 404):
            return None
        raise
    return "rescanned the one image (POST /admin/images/rescan)"


def scan(api: API, server: Server, reference: str, architecture: str) -> Scan:
    if not server.has("rescan_by_registry"):
        errors = _rescan(api, server, f"the rescan of {reference}", registry=reference)
        return Scan("rescanned the one image", errors)
    if server.has("rescan_one_known_image"):
        how = _rescan_known(api, reference, architecture)
        if how is not None:
            return Scan(how)
    ref = parse_reference(reference)
    project = ref.repository.split("/", 1)[0] if "/" in ref.repository else None
    errors = _rescan(api, server, f"the rescan of {ref.registry} project {project}",
                     registry=ref.registry, project=project)
    return Scan(f"rescanned the whole project {ref.registry}/{project}: {server.rule('rescan_by_registry')}",
                errors)
