"""What a run needs from the cluster, checked before a session holds any GPU.

- The image is registered for the architecture (else: who can register it, and how).
- The request fits the key's resource limits (a request above them waits forever), and is said to wait
  when the resource group has less free now.
- A multi-container session is not placed in a host-network resource group: there Backend.AI keys its
  SSH port map by `node-<kernel id>` while the containers know each other as main1, sub1, and their sshd
  listen on other ports than the map says (26.9.6 and upstream main), so they cannot reach each other.
  Reading a resource group's settings needs a superadmin key; without one the launcher in the session
  refuses the same case at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from common.backendai.api import API, APIError
from common.backendai.errors import BackendAIError, ImageNotRegisteredError
from common.registry.reference import parse_reference

IMAGE_QUERY = ("query($is_operation: Boolean) { images(is_operation: $is_operation) "
               "{ name registry architecture tag } }")
GROUP_QUERY = "query($name: String) { scaling_group(name: $name) { name use_host_network } }"
# The release that fixed SSH between a host-network session's containers (none yet).
HOST_NETWORK_FIXED_IN: tuple[int, int, int] | None = None
SIZE_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}


class PreflightError(BackendAIError):
    """The cluster cannot run this session as asked; nothing was started."""


@dataclass(frozen=True)
class Request:
    """What one session asks for: its image and the resources of each of its containers."""

    image: str
    architecture: str
    resources: Mapping[str, str | int | float]
    containers: int
    resource_group: str | None
    project: str | None


def amount(value: str | int | float) -> Decimal:
    """A slot amount as Backend.AI writes it: 8, "0.5", "900g" (binary sizes)."""
    text = str(value).strip().lower().removesuffix("b").removesuffix("i")
    try:
        if text and text[-1] in SIZE_UNITS:
            return Decimal(text[:-1]) * SIZE_UNITS[text[-1]]
        return Decimal(text)
    except InvalidOperation:
        raise PreflightError(f"resource amount {value!r} is not a number or size") from None


def check(api: API, request: Request, say: Callable[[str], None]) -> None:
    """Raise PreflightError (or ImageNotRegisteredError) for what would fail or never start."""
    _image(api, request)
    _limits(api, request, say)
    if request.containers > 1:
        _host_network(api, request, say)


def _role(api: API) -> str:
    try:
        return str((api.call("GET", "/auth/role", doing="asking for this key's role") or {}).get("global_role", ""))
    except APIError:
        return ""


def _image(api: API, request: Request) -> None:
    ref = parse_reference(request.image)
    images = api.gql(IMAGE_QUERY, {"is_operation": False}, doing="listing images")["images"] or []
    wanted = (ref.registry, ref.repository, ref.tag, request.architecture)
    if any((i.get("registry"), i.get("name"), i.get("tag"), i.get("architecture")) == wanted for i in images):
        return
    if _role(api) == "superadmin":
        how = f"register it: invoke bai.register {request.image}"
    else:
        how = (f"registering needs a superadmin key: ask your administrator to rescan {ref.registry}/"
               f"{ref.repository.split('/')[0]} (invoke bai.register {request.image}), or to enable the "
               "registry's webhook rescan (Harbor, Backend.AI 25.3+)")
    raise ImageNotRegisteredError(f"{api.server} does not know {request.image} for {request.architecture}; {how}")


def _limits(api: API, request: Request, say: Callable[[str], None]) -> None:
    # 26.x managers refuse the check without a project (400: `group` field required); older ones default it
    body: dict[str, Any] = {"scaling_group": request.resource_group, "group": request.project or "default"}
    try:
        presets = api.call("POST", "/resource/check-presets", json_body=body,
                           doing="checking the request against the resource limits")
    except APIError as error:
        say(f"preflight: resource limits not checked ({error})")
        return
    asked = {slot: amount(value) * request.containers for slot, value in request.resources.items()}
    limits = presets.get("keypair_limits") or {}
    over = [f"{slot} {asked[slot]:f} > {amount(limits[slot]).normalize():f}" for slot in asked
            if slot in limits and limits[slot] not in (None, "Infinity") and asked[slot] > amount(limits[slot])]
    if over:
        raise PreflightError(f"{request.containers} container(s) of {dict(request.resources)} ask for more than this "
                             f"key's resource policy allows ({'; '.join(over)}): such a session never starts")
    group = (presets.get("scaling_groups") or {}).get(request.resource_group or "") or {}
    if not group and len(presets.get("scaling_groups") or {}) == 1:
        group = next(iter(presets["scaling_groups"].values()))
    capacity = {slot: amount(group["using"].get(slot, 0)) + amount(value)
                for slot, value in (group.get("remaining") or {}).items()
                if value not in (None, "Infinity") and "using" in group}
    beyond = [f"{slot} {asked[slot]:f} > {capacity[slot].normalize():f}" for slot in asked
              if slot in capacity and asked[slot] > capacity[slot]]
    if beyond:
        raise PreflightError(f"refused before any session: {request.containers} container(s) of "
                             f"{dict(request.resources)} ask for more than the resource group's agents have in all, "
                             f"used and free ({'; '.join(beyond)}): the scheduler could never place it")
    free = presets.get("scaling_group_remaining") or {}
    short = [slot for slot in asked if slot in free and free[slot] not in (None, "Infinity")
             and asked[slot] > amount(free[slot])]
    if short:
        say(f"preflight: the resource group has less free now than the session asks ({', '.join(short)}); it "
            "will wait for resources (--start-timeout)")


def _groups(api: API, request: Request) -> list[str]:
    if request.resource_group:
        return [request.resource_group]
    try:
        answer = api.call("GET", "/scaling-groups", params={"group": request.project or "default"},
                          doing="listing the resource groups")
    except APIError:
        return []
    return [str(item["name"]) for item in (answer or {}).get("scaling_groups", [])]


def _host_network(api: API, request: Request, say: Callable[[str], None]) -> None:
    groups = _groups(api, request)
    host_network: list[str] = []
    for name in groups:
        try:
            found = api.gql(GROUP_QUERY, {"name": name}, doing=f"reading resource group {name}")["scaling_group"]
        except APIError:
            say("preflight: this key cannot read resource groups' settings (superadmin only); the launcher "
                "in the session refuses a host-network group at once")
            return
        if found and found.get("use_host_network"):
            host_network.append(name)
    fixed = HOST_NETWORK_FIXED_IN is not None and api.server.version >= HOST_NETWORK_FIXED_IN
    if not host_network or fixed:
        return
    others = [name for name in groups if name not in host_network]
    choose = f" Choose another with --resource-group ({', '.join(others)})." if others else ""
    raise PreflightError(
        f"resource group {', '.join(host_network)} of {api.server} uses host networking, where the "
        f"{request.containers} containers of a cluster session cannot reach each other: Backend.AI keys its SSH "
        "port map by node-<kernel id> while BACKENDAI_CLUSTER_HOSTS names main1, sub1, and each container's sshd "
        "listens on another port than the map says (a Backend.AI defect in 26.9.6 and upstream main). One "
        f"container per session runs there.{choose}")
