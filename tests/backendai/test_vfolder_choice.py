"""Which folder a name means when a key sees several of that name (the client mounts that one by id).

The listings are shaped as GET /folders answers them (23.09 and 26.x)."""

from __future__ import annotations

import pytest

from common.backendai.errors import BackendAIError
from common.backendai.vfolders import Folder, choose


def folder(id_: str, *, owner: bool, status: str = "ready", kind: str = "user", who: str = "me@lab") -> Folder:
    return Folder.from_listing({"id": id_, "name": "coco", "status": status, "is_owner": owner,
                                "ownership_type": kind, "user_email": who if kind == "user" else None,
                                "group_name": who if kind == "group" else None})


def test_the_users_own_folder_wins_over_a_projects_and_a_shared_one() -> None:
    ours = folder("a1", owner=True)
    seen = [folder("p1", owner=False, kind="group", who="research"), ours, folder("s1", owner=False, who="bob@lab")]
    assert choose(seen, "coco", "here") == ours


def test_our_own_deleted_copy_is_never_meant() -> None:
    """From 26.4.4 a name resolves to the last row of that name; our folder in the trash is such a row."""
    live = folder("new", owner=True)
    assert choose([folder("old", owner=True, status="delete-complete"), live], "coco", "here") == live
    assert choose([folder("old", owner=True, status="delete-pending")], "coco", "here") is None


def test_several_candidates_are_refused_naming_each() -> None:
    seen = [folder("p1", owner=False, kind="group", who="research"), folder("s1", owner=False, who="bob@lab")]
    with pytest.raises(BackendAIError, match=r"2 virtual folders named coco.*id p1, group folder of research.*"
                                             r"id s1, user folder of bob@lab"):
        choose(seen, "coco", "Backend.AI 26.9.6 at x")
    with pytest.raises(BackendAIError, match="2 virtual folders named coco"):
        choose([folder("a", owner=True), folder("b", owner=True)], "coco", "here")


def test_the_only_usable_folder_of_that_name_is_meant_whoever_owns_it() -> None:
    shared = folder("s1", owner=False, who="bob@lab")
    assert choose([shared], "coco", "here") == shared
    assert choose([], "coco", "here") is None
