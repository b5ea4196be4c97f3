"""A virtual folder's lifecycle and listing across Backend.AI releases.

Since 24.03 deleting a folder moves it to the trash (status delete-pending), where it keeps its name:
creating the same name fails, and a listing still shows it. So a delete also deletes it from the
trash and waits until the manager no longer lists the name, and a folder is only taken to exist
when its status is one a session can use.

The 23.9 SDK lists a folder's files with the path in a JSON body of the GET; 26.x reads the query
string only and silently lists the root for every path. The path goes in the query here, which
23.09 reads too (a GET without a body).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ai.backend.client.request import Request
from ai.backend.client.session import AsyncSession

from common.backendai.errors import BackendAIError
from common.backendai.server import Server

# Statuses of a folder on its way out (26.x names; 23.09 has delete-ongoing only).
LEAVING = frozenset({"delete-pending", "delete-ongoing", "delete-complete", "delete-error",
                     "purge-ongoing", "deleted-complete"})
GONE_TIMEOUT = 60.0


async def list_dir(name: str, path: str) -> list[dict[str, Any]]:
    """The entries of one directory of the folder (name, type, size, ...)."""
    rqst = Request("GET", f"/folders/{name}/files", params={"path": path})
    async with rqst.fetch() as resp:
        return list((await resp.json())["items"])


async def find(api: AsyncSession, name: str) -> dict[str, Any] | None:
    """The key's folder of that name, whatever its status."""
    return next((folder for folder in await api.VFolder.list() if folder["name"] == name), None)


async def ensure(api: AsyncSession, server: Server, name: str, host: str | None) -> None:
    folder = await find(api, name)
    if folder is None:
        await api.VFolder.create(name, host=host)
        return
    status = str(folder.get("status", "ready"))
    if status in LEAVING:
        raise BackendAIError(
            f"virtual folder {name} on {server} is {status}: {server.rule('vfolder_trash')}; restore it "
            "or delete it for good (common.backendai.client.delete_vfolder) before using the name again")


async def delete(api: AsyncSession, server: Server, name: str) -> None:
    folder = await find(api, name)
    if folder is None:
        raise BackendAIError(f"{server} has no virtual folder {name} to delete")
    if folder.get("status") not in LEAVING:
        await api.VFolder(name).delete()
    if server.has("vfolder_trash"):
        rqst = Request("POST", "/folders/delete-from-trash-bin")
        rqst.set_json({"vfolder_id": str(folder["id"])})
        async with rqst.fetch():
            pass
    deadline = time.monotonic() + GONE_TIMEOUT
    while (left := await find(api, name)) is not None:
        if time.monotonic() > deadline:
            raise BackendAIError(f"virtual folder {name} on {server} is still listed "
                                 f"({left.get('status')}) {GONE_TIMEOUT:.0f}s after its deletion")
        await asyncio.sleep(0.5)
