"""Virtual folders across Backend.AI releases: which folder a name means, their lifecycle, their files.

- A name can match several folders a key sees (its own, a project's, one shared with it; since 24.03 also
  its own copy in the trash). The project means the folder the key's user owns, or refuses and names the
  candidates; sessions then mount that folder by id where the manager takes ids (25.12+), because from
  26.4.4 a name resolves to the last row of that name whoever owns it and whatever its status.
- Since 24.03 deleting a folder moves it to the trash (delete-pending) where it keeps its name; so a delete
  also deletes it from the trash and purges its row (24.03.0-24.03.2 list delete-complete folders for good).
- Files travel through the storage proxy: a token from the manager, then tus PATCHes up and HTTP GETs down
  (with a Range to read only what a growing file added since the last read).
- The file listing takes its path in the query: 26.x reads only the query and silently lists the root for
  a path in a GET's JSON body (which 23.09's SDK sent).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from common.atomic import atomic_path
from common.backendai.api import API, APIError
from common.backendai.errors import BackendAIError, VFolderNotFoundError

# Statuses of a folder on its way out (26.x names; 23.09 has delete-ongoing only).
LEAVING = frozenset({"delete-pending", "delete-ongoing", "delete-complete", "delete-error",
                     "purge-ongoing", "deleted-complete"})
GONE_TIMEOUT = 60.0
CHUNK = 8 * 1024 * 1024
TRANSFER_TIMEOUT = (10.0, 300.0)


@dataclass(frozen=True)
class Folder:
    """One folder as the manager lists it."""

    id: str
    name: str
    status: str
    is_owner: bool
    ownership: str
    owner: str

    @classmethod
    def from_listing(cls, item: dict[str, Any]) -> Folder:
        owner = item.get("user_email") or item.get("group_name") or item.get("user") or item.get("group") or "?"
        return cls(id=str(item["id"]), name=str(item["name"]), status=str(item.get("status") or "ready"),
                   is_owner=bool(item.get("is_owner")), ownership=str(item.get("ownership_type", "user")),
                   owner=str(owner))

    def __str__(self) -> str:
        return f"{self.name} (id {self.id}, {self.ownership} folder of {self.owner}, {self.status})"


def listing(api: API) -> list[Folder]:
    return [Folder.from_listing(item) for item in api.call("GET", "/folders", doing="listing virtual folders")]


def choose(folders: Iterable[Folder], name: str, where: object) -> Folder | None:
    """The folder `name` means among those a key sees: the usable one it owns, else the only usable one of
    that name. Several candidates (two it owns, or a project's and another user's shared one) are refused,
    naming them; a folder on its way out (the trash) is never meant."""
    usable = [folder for folder in folders if folder.name == name and folder.status not in LEAVING]
    owned = [folder for folder in usable if folder.is_owner]
    if len(owned) == 1:
        return owned[0]
    candidates = owned or usable
    if len(candidates) > 1:
        raise BackendAIError(f"{where} has {len(candidates)} virtual folders named {name} that this key can use: "
                             f"{'; '.join(map(str, candidates))}. Rename one, or use a folder of another name")
    return candidates[0] if candidates else None


def find(api: API, name: str) -> Folder | None:
    return choose(listing(api), name, api.server)


def require(api: API, name: str) -> Folder:
    folder = find(api, name)
    if folder is None:
        leaving = [folder for folder in listing(api) if folder.name == name]
        state = f" (only {'; '.join(map(str, leaving))})" if leaving else ""
        raise VFolderNotFoundError(f"{api.server} has no usable virtual folder {name} for this key{state}")
    return folder


def ensure(api: API, name: str, host: str | None) -> Folder:
    """The key's folder of that name, created when it has none."""
    folder = find(api, name)
    if folder is not None:
        return folder
    leaving = [f for f in listing(api) if f.name == name and f.is_owner]
    if leaving:
        raise BackendAIError(
            f"virtual folder {leaving[0]} on {api.server} is on its way out: {api.server.rule('vfolder_trash')}; "
            "restore it or delete it for good (common.backendai.client.delete_vfolder) before using the name again")
    api.call("POST", "/folders", json_body={"name": name, "host": host, "usage_mode": "general", "permission": "rw"},
             doing=f"creating virtual folder {name}")
    return require(api, name)


def delete(api: API, name: str) -> None:
    """Delete the key's folder for good: to the trash, out of it, and its row purged, so the name is free."""
    folder = find(api, name) or next((f for f in listing(api) if f.name == name and f.is_owner), None)
    if folder is None:
        raise VFolderNotFoundError(f"{api.server} has no virtual folder {name} to delete")
    if folder.status not in LEAVING:
        api.call("DELETE", f"/folders/{name}", doing=f"deleting virtual folder {name}")
    if not api.server.has("vfolder_trash"):
        _wait_unlisted(api, folder)
        return
    if folder.status not in ("delete-ongoing", "delete-complete", "purge-ongoing"):
        api.call("POST", "/folders/delete-from-trash-bin", json_body={"vfolder_id": folder.id},
                 doing=f"deleting virtual folder {name} from the trash")
    deadline = time.monotonic() + GONE_TIMEOUT
    while True:
        try:
            api.call("POST", "/folders/purge", json_body={"vfolder_id": folder.id},
                     doing=f"purging virtual folder {name}")
            break
        except APIError as error:
            if error.status == 404:  # the manager removed the row itself
                break
            if time.monotonic() > deadline:
                raise BackendAIError(f"virtual folder {folder} on {api.server} could not be purged "
                                     f"{GONE_TIMEOUT:.0f}s after its deletion: {error}") from None
            time.sleep(0.5)  # the storage proxy has not finished removing its files
    _wait_unlisted(api, folder)


def _wait_unlisted(api: API, folder: Folder) -> None:
    deadline = time.monotonic() + GONE_TIMEOUT
    while (left := next((f for f in listing(api) if f.id == folder.id), None)) is not None:
        if time.monotonic() > deadline:
            raise BackendAIError(f"virtual folder {left} on {api.server} is still listed "
                                 f"{GONE_TIMEOUT:.0f}s after its deletion")
        time.sleep(0.5)


def list_dir(api: API, name: str, path: str) -> list[dict[str, Any]]:
    """The entries of one directory of the folder (name, type, size, ...)."""
    answer = api.call("GET", f"/folders/{name}/files", params={"path": path},
                      doing=f"listing {path} of virtual folder {name}")
    return list(answer["items"])


def _transfer(api: API, name: str, kind: str, body: dict[str, Any]) -> tuple[str, str]:
    """(storage proxy URL, token) of one file's upload or download."""
    answer = api.call("POST", f"/folders/{name}/request-{kind}", json_body=body,
                      doing=f"asking to {kind} {body['path']} of virtual folder {name}")
    return str(answer["url"]), str(answer["token"])


def _proxy_error(api: API, response: requests.Response, doing: str) -> BackendAIError:
    return BackendAIError(f"the storage proxy of {api.server} refused {doing}: {response.status_code} "
                          f"{response.reason}: {response.text[:300]}")


def upload(api: API, name: str, files: Iterable[str], basedir: Path) -> int:
    """Upload files (paths relative to `basedir`) into the folder at the same relative paths; bytes sent."""
    sent = 0
    for relative in files:
        source = basedir / relative
        size = source.stat().st_size
        url, token = _transfer(api, name, "upload", {"path": str(relative), "size": size})
        headers = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
        with source.open("rb") as stream:
            offset = 0
            while True:
                chunk = stream.read(CHUNK)
                response = api.http.patch(url, params={"token": token}, data=chunk, timeout=TRANSFER_TIMEOUT,
                                          headers={**headers, "Upload-Offset": str(offset)})
                if response.status_code >= 400:
                    raise _proxy_error(api, response, f"the upload of {relative} into {name}")
                offset += len(chunk)
                if offset >= size:  # one PATCH, empty, for an empty file
                    break
        sent += size
    return sent


def download(api: API, name: str, path: str, dest: Path) -> Path:
    """One file of the folder into `dest` (written under a temporary name, renamed when complete)."""
    url, token = _transfer(api, name, "download", {"path": path})
    with api.http.get(url, params={"token": token}, stream=True, timeout=TRANSFER_TIMEOUT) as response:
        if response.status_code >= 400:
            raise _proxy_error(api, response, f"the download of {path} from {name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as partial, partial.open("wb") as out:
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
    return dest


def read_from(api: API, name: str, path: str, offset: int) -> bytes:
    """What a growing file holds past `offset` (b"" while it does not exist yet): the tail of a long run's
    output costs what it added, not the whole file again."""
    try:
        url, token = _transfer(api, name, "download", {"path": path})
    except APIError as error:
        if error.status in (400, 404):
            return b""
        raise
    response = api.http.get(url, params={"token": token}, headers={"Range": f"bytes={offset}-"},
                            timeout=TRANSFER_TIMEOUT)
    if response.status_code in (404, 416):  # not written yet; nothing past the offset
        return b""
    if response.status_code >= 400:
        raise _proxy_error(api, response, f"reading {path} of {name}")
    # A server that ignores Range answers 200 with the whole file.
    return response.content if response.status_code == 206 else response.content[offset:]
