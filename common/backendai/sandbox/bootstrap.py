"""The sandbox's generated state: secrets, config files, database schema, fixtures and etcd keys.

Backend.AI's wheels ship no sample configs, alembic.ini or fixtures, so all of them are written here.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import string
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from string import Template

from common.backendai.sandbox.install import postgres_bin
from common.backendai.sandbox.layout import STORAGE_HOST, SandboxLayout
from common.backendai.sandbox.processes import SandboxError

TEMPLATES = Path(__file__).resolve().parent / "templates"
CONFIG_FILES = ("manager.toml", "agent.toml", "storage-proxy.toml", "alembic.ini")
VFOLDER_PERMISSIONS = ("create-vfolder", "modify-vfolder", "delete-vfolder", "mount-in-session",
                       "upload-file", "download-file", "invite-others", "set-user-specific-permission")
ADMIN_EMAIL = "admin@sandbox.local"


def write_private(path: Path, text: str) -> None:
    """Write a file only root can read, via a temp name so readers never see half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def load_secrets(layout: SandboxLayout) -> dict[str, str]:
    """The sandbox's keys and passwords, generated on first use and kept with its data."""
    if layout.secrets.exists():
        return json.loads(layout.secrets.read_text())
    alphabet = string.ascii_uppercase + string.digits
    values = {
        "access_key": "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        "secret_key": secrets.token_urlsafe(30),
        "admin_password": secrets.token_urlsafe(12),
        "db_password": secrets.token_hex(12),
        "storage_manager_secret": secrets.token_hex(16),
        "storage_jwt_secret": secrets.token_hex(16),
        "user_uuid": str(uuid.uuid4()),
        "group_uuid": str(uuid.uuid4()),
    }
    layout.cfg.mkdir(parents=True, exist_ok=True)
    write_private(layout.secrets, json.dumps(values, indent=1))
    return values


def client_environment(layout: SandboxLayout) -> dict[str, str]:
    keys = load_secrets(layout)
    return {"BACKEND_ENDPOINT": layout.endpoint, "BACKEND_ENDPOINT_TYPE": "api",
            "BACKEND_ACCESS_KEY": keys["access_key"], "BACKEND_SECRET_KEY": keys["secret_key"]}


def write_configs(layout: SandboxLayout) -> None:
    """Render the config templates (every `up`, so a changed template or port base takes effect)."""
    ports = layout.ports
    first, last = ports.container_range
    values = {**load_secrets(layout), **ports.monitors, "root": str(layout.root),
              "etcd_port": ports.etcd, "postgres_port": ports.postgres, "manager_port": ports.manager,
              "agent_rpc_port": ports.agent_rpc, "agent_sock_port": ports.agent_sock,
              "agent_id": layout.agent_id, "metadata_server_port": ports.metadata_server,
              "storage_client_port": ports.storage_client,
              "storage_manager_port": ports.storage_manager, "container_port_first": first,
              "container_port_last": last}
    for name in CONFIG_FILES:
        write_private(layout.cfg / name, Template((TEMPLATES / name).read_text()).substitute(values))
    write_private(layout.client_env,
                  "".join(f"{key}={value}\n" for key, value in client_environment(layout).items()))


def etcd_config(registries: Sequence[str], redis_port: int) -> dict:
    return {
        "system": {"timezone": "UTC"},
        "api": {"allow-origins": "*"},
        "redis": {"addr": f"127.0.0.1:{redis_port}"},
        "docker": {
            # auto_pull=tag: the agent pulls when the tag is not present locally.
            "image": {"auto_pull": "tag"},
            "registry": {host: {"": f"http://{host}", "type": "docker", "ssl_verify": "false"}
                         for host in registries},
        },
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


def fixtures(keys: dict[str, str], registries: Sequence[str]) -> dict:
    """Domain, project, admin user and keypair, policies and the scaling group.

    The manager's populate_fixture stops at the first empty table list, so none is empty; the
    vfolder host must be allowed on domain, project and keypair policy (the manager unions them).
    """
    hosts = {STORAGE_HOST: list(VFOLDER_PERMISSIONS)}
    return {
        "domains": [{"name": "default", "description": "sandbox domain", "is_active": True,
                     "total_resource_slots": {}, "allowed_vfolder_hosts": hosts,
                     "allowed_docker_registries": list(registries)}],
        "user_resource_policies": [{"name": "default", "max_vfolder_size": 0,
                                    "max_session_count_per_model_session": 10}],
        "project_resource_policies": [{"name": "default", "max_vfolder_size": 0}],
        "keypair_resource_policies": [{
            "name": "default", "default_for_unspecified": "UNLIMITED", "total_resource_slots": {},
            "max_session_lifetime": 0, "max_concurrent_sessions": 5, "max_containers_per_session": 1,
            "max_vfolder_count": 20, "max_vfolder_size": 0, "idle_timeout": 3600,
            "allowed_vfolder_hosts": hosts}],
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
    """The auth middleware finds the user by users.main_access_key, which the keypair insert does not
    set: without it every signed request gets 401 "Credential/signature mismatch"."""
    return {"__mode": "update",
            "users": [{"uuid": keys["user_uuid"], "main_access_key": keys["access_key"]}]}


def run_logged(layout: SandboxLayout, step: str, argv: Sequence[str], *, user: str | None = None,
               stdin: str | None = None) -> None:
    log = layout.log("bootstrap")
    with open(log, "ab") as out:
        out.write(f"\n### {step}: {shlex.join(argv)}\n".encode())
        out.flush()
        command = ["su", user, "-c", shlex.join(argv)] if user else list(argv)
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=layout.cfg,
                                input=stdin.encode() if stdin is not None else None)
    if result.returncode != 0:
        raise SandboxError(f"sandbox step '{step}' failed (exit {result.returncode}); see {log}")


def init_database_cluster(layout: SandboxLayout) -> None:
    """initdb once; PostgreSQL refuses to run as root, so its folder belongs to `postgres`."""
    pg_dir = layout.pg_data.parent
    pg_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", "postgres:postgres", str(pg_dir)], check=True)
    run_logged(layout, "initdb", [str(postgres_bin() / "initdb"), "-D", str(layout.pg_data), "-U", "postgres",
                                  "--auth=trust", "-E", "UTF8"], user="postgres")


def create_database(layout: SandboxLayout) -> None:
    """The password travels on stdin, never in a process argument."""
    password = load_secrets(layout)["db_password"]
    run_logged(layout, "create database",
               ["psql", "-qh", "127.0.0.1", "-p", str(layout.ports.postgres), "-U", "postgres",
                "-v", "ON_ERROR_STOP=1"],
               stdin=f"ALTER USER postgres PASSWORD '{password}';\nCREATE DATABASE backend;\n")


def manager_cli(layout: SandboxLayout, *args: str) -> list[str]:
    return [str(layout.bin / "backend.ai"), "mgr", "-f", str(layout.cfg / "manager.toml"), *args]


def generate_rpc_keys(layout: SandboxLayout) -> None:
    for name in ("manager", "agent"):
        if not (layout.cfg / f"{name}.key_secret").exists():
            run_logged(layout, f"{name} RPC keypair",
                       [str(layout.bin / "backend.ai"), "mgr", "generate-rpc-keypair", str(layout.cfg), name])


def populate(layout: SandboxLayout, registries: Sequence[str]) -> None:
    """Schema, fixtures and etcd configuration: once per sandbox data folder."""
    keys = load_secrets(layout)
    files = {"fixture.json": fixtures(keys, registries),
             "fixture-main-key.json": main_access_key_fixture(keys),
             "etcd-config.json": etcd_config(registries, layout.ports.redis),
             "etcd-volumes.json": etcd_volumes(layout, keys)}
    for name, content in files.items():
        write_private(layout.cfg / name, json.dumps(content, indent=1))
    run_logged(layout, "schema", manager_cli(layout, "schema", "oneshot", "-f",
                                             str(layout.cfg / "alembic.ini")))
    run_logged(layout, "fixtures", manager_cli(layout, "fixture", "populate",
                                               str(layout.cfg / "fixture.json")))
    run_logged(layout, "main access key", manager_cli(layout, "fixture", "populate",
                                                      str(layout.cfg / "fixture-main-key.json")))
    run_logged(layout, "etcd config", manager_cli(layout, "etcd", "put-json", "config",
                                                  str(layout.cfg / "etcd-config.json")))
    run_logged(layout, "etcd volumes", manager_cli(layout, "etcd", "put-json", "volumes",
                                                   str(layout.cfg / "etcd-volumes.json")))
