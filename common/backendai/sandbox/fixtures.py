"""The sandbox's database fixtures and etcd configuration, per Backend.AI line.

The wheels ship none that match their own schema (lablup/backend.ai's fixtures/ follow its main
branch), so these are the minimal sets that a sandbox needs: one domain, project, superadmin with
a keypair, the policies, one resource group and the registries it may pull from. The manager's
`fixture populate` inserts with ON CONFLICT DO NOTHING (26.x) or stops at the first empty table
list (23.09), so no list is empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from common.backendai.sandbox.layout import STORAGE_HOST, SandboxLayout

VFOLDER_PERMISSIONS = ("create-vfolder", "modify-vfolder", "delete-vfolder", "mount-in-session",
                       "upload-file", "download-file", "invite-others", "set-user-specific-permission")
ADMIN_EMAIL = "admin@sandbox.local"
# Multi-container (cluster) sessions and a few sessions at once (the benchmarks' cluster runs).
MAX_CONTAINERS_PER_SESSION = 4
MAX_CONCURRENT_SESSIONS = 8
# Named ids, so that a fixture applied again (a registry added on a later `up`) finds the same rows.
NAMESPACE = uuid.UUID("8d3f7a52-2b8e-4c0e-9a51-7d54c1f0b6a3")
# 26.x knows only the slots in resource_slot_types; cuda.* are the mock GPUs'.
SLOT_TYPES = (("cpu", "count", "CPU", "Core"), ("mem", "bytes", "RAM", "GiB"),
              ("cuda.device", "count", "GPU", "GPU"), ("cuda.shares", "count", "fGPU", "fGPU"))


def named_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def vfolder_hosts() -> dict[str, list[str]]:
    return {STORAGE_HOST: list(VFOLDER_PERMISSIONS)}


def etcd_config(layout: SandboxLayout, registries: Sequence[str]) -> dict:
    """23.09 reads its registries from etcd; 26.x from the database (container_registries)."""
    docker: dict = {"image": {"auto_pull": "tag"}}  # the agent pulls when the tag is not local
    if not layout.line.in_container:
        docker["registry"] = {host: {"": f"http://{host}", "type": "docker", "ssl_verify": "false"}
                              for host in registries}
    return {
        "system": {"timezone": "UTC"},
        "api": {"allow-origins": "*"},
        "redis": {"addr": f"127.0.0.1:{layout.ports.redis}"},
        "docker": docker,
        "idle": {"enabled": ""},
        "network": {"subnet": {"agent": "0.0.0.0/0", "container": "0.0.0.0/0"}},
        "plugins": {"accelerator": {}, "scheduler": {}},
    }


def etcd_volumes(layout: SandboxLayout, keys: dict[str, str]) -> dict:
    proxy = STORAGE_HOST.split(":")[0]
    return {
        "_types": {"group": "", "user": ""},
        "default_host": STORAGE_HOST,
        "exposed_volume_info": "percentage",
        "proxies": {proxy: {
            "client_api": f"http://127.0.0.1:{layout.ports.storage_client}",
            "manager_api": f"http://127.0.0.1:{layout.ports.storage_manager}",
            "secret": keys["storage_manager_secret"], "ssl_verify": "false"}},
    }


def keypair_policy(extra: dict) -> dict:
    return {"name": "default", "default_for_unspecified": "UNLIMITED", "total_resource_slots": {},
            "max_session_lifetime": 0, "max_concurrent_sessions": MAX_CONCURRENT_SESSIONS,
            "max_containers_per_session": MAX_CONTAINERS_PER_SESSION, "idle_timeout": 3600,
            "allowed_vfolder_hosts": vfolder_hosts(), **extra}


def fixtures_2309(keys: dict[str, str], registries: Sequence[str]) -> dict:
    """The vfolder host must be allowed on domain, project and keypair policy (the manager unions them)."""
    hosts = vfolder_hosts()
    return {
        "domains": [{"name": "default", "description": "sandbox domain", "is_active": True,
                     "total_resource_slots": {}, "allowed_vfolder_hosts": hosts,
                     "allowed_docker_registries": list(registries)}],
        "user_resource_policies": [{"name": "default", "max_vfolder_size": 0,
                                    "max_session_count_per_model_session": 10}],
        "project_resource_policies": [{"name": "default", "max_vfolder_size": 0}],
        "keypair_resource_policies": [keypair_policy({"max_vfolder_count": 20, "max_vfolder_size": 0})],
        "groups": [{"id": keys["group_uuid"], "name": "default", "description": "sandbox project",
                    "is_active": True, "domain_name": "default", "total_resource_slots": {},
                    "allowed_vfolder_hosts": hosts, "resource_policy": "default"}],
        "users": [{"uuid": keys["user_uuid"], "username": "admin", "email": ADMIN_EMAIL,
                   "password": keys["admin_password"], "need_password_change": False,
                   "full_name": "Sandbox admin", "description": "superadmin of the local sandbox",
                   "status": "active", "status_info": "admin-requested", "domain_name": "default",
                   "role": "superadmin", "resource_policy": "default"}],
        "keypairs": [{"user_id": ADMIN_EMAIL, "access_key": keys["access_key"],
                      "secret_key": keys["secret_key"], "is_active": True, "resource_policy": "default",
                      "rate_limit": 30000, "num_queries": 0, "is_admin": True,
                      "user": keys["user_uuid"]}],
        "association_groups_users": [{"group_id": keys["group_uuid"], "user_id": keys["user_uuid"]}],
        "scaling_groups": [{"name": "default", "description": "sandbox resource group",
                            "is_active": True, "is_public": True, "driver": "static", "driver_opts": {},
                            "scheduler": "fifo", "scheduler_opts": {}, "use_host_network": False}],
        "sgroups_for_domains": [{"scaling_group": "default", "domain": "default"}],
    }


def main_access_key_fixture(keys: dict[str, str]) -> dict:
    """23.09: the auth middleware finds the user by users.main_access_key, which the keypair insert
    does not set: without it every signed request gets 401 "Credential/signature mismatch"."""
    return {"__mode": "update",
            "users": [{"uuid": keys["user_uuid"], "main_access_key": keys["access_key"]}]}


def fixtures_26(keys: dict[str, str], registries: Sequence[str]) -> dict:
    """26.x's schema: keypairs.is_default instead of users.main_access_key, resource groups and
    domains by id in sgroups_for_domains, slot types in the database. Tables are filled in this
    order (the personal project refers to its user). Project membership for RBAC is made through
    the API once the manager runs (the fixture row is not enough there)."""
    hosts = vfolder_hosts()
    domain_id, group_id = named_id("domain", "default"), keys["group_uuid"]
    resource_group_id = named_id("resource-group", "default")
    return {
        "domains": [{"id": domain_id, "name": "default", "description": "sandbox domain",
                     "is_active": True, "total_resource_slots": {}, "allowed_vfolder_hosts": hosts,
                     "allowed_docker_registries": list(registries)}],
        "user_resource_policies": [{"name": "default", "max_vfolder_count": 0, "max_quota_scope_size": -1,
                                    "max_session_count_per_model_session": 10}],
        "project_resource_policies": [{"name": "default", "max_vfolder_count": 0,
                                       "max_quota_scope_size": -1, "max_network_count": 3}],
        "scaling_groups": [{"id": resource_group_id, "name": "default", "description": "sandbox resource group",
                            "is_active": True, "is_default": True, "driver": "static", "driver_opts": {},
                            "scheduler": "fifo", "scheduler_opts": {}}],
        "sgroups_for_domains": [{"resource_group_id": resource_group_id, "domain_id": domain_id}],
        "users": [{"uuid": keys["user_uuid"], "username": "admin", "email": ADMIN_EMAIL,
                   "password": keys["admin_password"], "need_password_change": False,
                   "full_name": "Sandbox admin", "description": "superadmin of the local sandbox",
                   "status": "active", "status_info": "admin-requested", "domain_name": "default",
                   "domain_id": domain_id, "resource_policy": "default", "role": "superadmin"}],
        # the personal project (creator = the user) is where the user's own virtual folders live;
        # a user the API creates gets one, a fixture user does not
        "groups": [{"id": group_id, "name": "default", "description": "sandbox project", "is_active": True,
                    "domain_name": "default", "resource_policy": "default", "total_resource_slots": {},
                    "allowed_vfolder_hosts": hosts, "type": "general"},
                   {"id": named_id("personal-project", keys["user_uuid"]), "name": "admin",
                    "description": "Personal Project", "is_active": True, "domain_name": "default",
                    "resource_policy": "default", "total_resource_slots": {}, "allowed_vfolder_hosts": hosts,
                    "type": "personal", "creator_id": keys["user_uuid"]}],
        "association_groups_users": [{"group_id": group_id, "user_id": keys["user_uuid"]}],
        "keypair_resource_policies": [{**keypair_policy({}), "is_default": True}],
        "keypairs": [{"access_key": keys["access_key"], "secret_key": keys["secret_key"], "is_active": True,
                      "resource_policy": "default", "rate_limit": 30000, "num_queries": 0, "is_admin": True,
                      "is_default": True, "user": keys["user_uuid"]}],
        "resource_slot_types": [
            {"uuid": named_id("slot", name), "slot_name": name, "slot_type": kind, "required": name in ("cpu", "mem"),
             "display_name": display, "description": display, "display_unit": unit, "display_icon": name.split(".")[0],
             "number_format": {"binary": kind == "bytes", "round_length": 2 if name.endswith("shares") else 0},
             "rank": 100 * (rank + 1)}
            for rank, (name, kind, display, unit) in enumerate(SLOT_TYPES)],
    }


def fixtures_2604(keys: dict[str, str], registries: Sequence[str]) -> dict:
    """26.4 (the LTS) sits between the two: 26.x's policies, registries and slot types (without their
    uuid), but 23.09's users.main_access_key (no keypairs.is_default), resource groups and domains by
    name in sgroups_for_domains, no default resource group or policy column, and no personal projects
    (a user owns its folders itself)."""
    data = fixtures_26(keys, registries)
    only = {"scaling_groups": ("is_default",), "users": ("domain_id",), "keypair_resource_policies": ("is_default",),
            "keypairs": ("is_default",), "resource_slot_types": ("uuid",)}
    for table, columns in only.items():
        data[table] = [{k: v for k, v in row.items() if k not in columns} for row in data[table]]
    data["scaling_groups"] = [{**row, "is_public": True, "use_host_network": False} for row in data["scaling_groups"]]
    data["sgroups_for_domains"] = [{"scaling_group": "default", "domain": "default"}]
    data["groups"] = [row for row in data["groups"] if row["type"] != "personal"]
    return data


def registry_rows(registries: Sequence[str], projects: Sequence[str]) -> dict:
    """26.x: one container_registries row per registry and project (images are <registry>/<project>/...)."""
    return {"container_registries": [
        {"id": named_id("registry", host, project), "registry_name": host, "url": f"http://{host}",
         "type": "docker", "project": project, "ssl_verify": False, "is_global": True}
        for host in registries for project in projects]}


def allowed_registries(registries: Sequence[str]) -> dict:
    """The domain may pull from these (an update, so a registry added later is allowed too)."""
    return {"__mode": "update", "domains": [{"name": "default", "allowed_docker_registries": list(registries)}]}
