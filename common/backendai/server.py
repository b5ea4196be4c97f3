"""Which Backend.AI the client talks to, and the rules of that release the client follows.

One client (common/backendai/api.py, speaking API v7, which every newer manager still accepts) drives
every line from 23.09 to 26.9; what differs is decided here from the manager's own version (`GET /`
answers `{"version": "v9.20250722", "manager": "26.9.6"}`), and every message about a difference names
the release and the rule. Each rule's release was read at the release tags of lablup/backend.ai (the
pull request is named where one introduced it); tests/backendai/test_client_rules.py checks each
boundary on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int, int]
VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Rule:
    since: Version
    says: str


RULES = {
    "vfolder_trash": Rule((24, 3, 0), "deleting a virtual folder moves it to the trash, where it keeps "
                                      "its name until it is deleted from there"),
    "registries_in_database": Rule((24, 9, 0), "registries are rows of the container_registries table, "
                                               "one per registry and project, not etcd keys"),
    "single_docker_manifest": Rule((24, 9, 0), "a single-platform Docker manifest is scanned (before, "
                                               "only manifest lists and OCI indexes)"),
    # lablup/backend.ai#3066; 24.09's strict request schema refuses the unknown key
    "batch_timeout": Rule((24, 12, 0), "a batch session takes batch_timeout and the manager ends it"),
    # #1838
    "mount_options": Rule((24, 3, 0), "a mount takes options (read-only permission)"),
    # #5237 accepts mount_ids/mount_id_map from 25.12.0 (in a request of API v9); the client sends them from
    # 26.4 on, the line whose 26.4.4 resolves a folder given by name to the last row of that name, whoever
    # owns it and whatever its status (before it, a name means the key's own folder)
    "mount_by_id": Rule((26, 4, 0), "a session mounts virtual folders by id (mount_ids, mount_id_map, in a "
                                    "request of API v9): from 26.4.4 a folder given by name resolves to the last "
                                    "row of that name, whoever owns it and whatever its status"),
    "single_oci_manifest": Rule((25, 4, 0), "a single-platform OCI manifest is scanned"),
    "oci_media_types": Rule((25, 10, 0), "the scanner asks the registry for OCI media types too (23.09 asks "
                                         "for Docker ones only, and a registry answers an OCI index or "
                                         "manifest with 404 then)"),
    "rescan_by_registry": Rule((25, 6, 0), "rescan_images looks its argument up as a registry name (with "
                                           "a project) and scans that whole project; an image reference "
                                           "matches nothing"),
    "rescan_one_known_image": Rule((26, 3, 0), "POST /admin/images/rescan rescans one image the manager "
                                               "already knows"),
    "preemptible_sessions": Rule((26, 3, 0), "sessions are preemptible unless created with "
                                             "is_preemptible=false, and a resource group with preemption on "
                                             "may end one mid-run"),
    "preemption_statuses": Rule((26, 8, 0), "a session can be RESERVED (waiting for a preemption's victims), "
                                            "PREEMPTED and RESCHEDULING (back to PENDING)"),
}
# The lines the client was checked against; a manager outside them is refused unless the user accepts it.
OLDEST = (23, 9, 0)
NEWEST_LINE = (26, 9)
SUPPORTED = "23.09, 24.03, 24.09, 24.12, 25.x and 26.x up to 26.9 (maintained: 26.4 LTS, 26.8, 26.9)"
ACCEPT_ENV = "MLPERF_BAI_ACCEPT_RELEASE"


def parse_version(text: str) -> Version:
    """"26.9.6", "23.09.10" or "26.4.0rc1" -> (26, 9, 6), (23, 9, 10), (26, 4, 0)."""
    match = VERSION.match(text.strip())
    if match is None:
        raise ValueError(f"not a Backend.AI release: {text!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


@dataclass(frozen=True)
class Server:
    """A manager: where it is and which release it runs."""

    endpoint: str
    release: str
    api_version: str

    @property
    def version(self) -> Version:
        return parse_version(self.release)

    def has(self, rule: str) -> bool:
        return self.version >= RULES[rule].since

    def rule(self, rule: str) -> str:
        """What the rule says and since when, for messages: "since 25.6.0, rescan_images ..."."""
        since = ".".join(map(str, RULES[rule].since))
        return f"since {since}, {RULES[rule].says}"

    def __str__(self) -> str:
        return f"Backend.AI {self.release} at {self.endpoint}"

    def unsupported(self, accepted: str | None = None) -> str | None:
        """Why the client does not drive this manager (None: it does). `accepted` is a release the
        user accepts anyway (MLPERF_BAI_ACCEPT_RELEASE), for a line newer than the client knows."""
        if self.version < OLDEST:
            return f"{self} is older than 23.09; the client supports {SUPPORTED}"
        if self.version[:2] > NEWEST_LINE and accepted != self.release:
            return (f"{self} is a line the client has not been checked against; it supports {SUPPORTED}. "
                    f"To try it anyway, set {ACCEPT_ENV}={self.release}")
        return None
