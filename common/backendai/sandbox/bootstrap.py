"""The sandbox's generated state: secrets, config files, database schema, fixtures and etcd keys.

Backend.AI's wheels ship no sample configs, alembic.ini or fixtures, so all of them are written here.
26.x's commands run in the service container (container.exec_argv); the paths are the same there.
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

from common.backendai.sandbox import container, fixtures
from common.backendai.sandbox.install import postgres_bin
from common.backendai.sandbox.layout import SandboxLayout, SandboxOptions
from common.backendai.sandbox.processes import SandboxError

CONFIG_FILES = ("manager.toml", "agent.toml", "storage-proxy.toml", "alembic.ini")
# Four fake CUDA GPUs for every line: the mock accelerator plugin reads them from the agent's
# working directory (the same file format since 23.09).
TEMPLATES = Path(__file__).resolve().parent / "templates"
MOCK_ACCELERATOR = "mock-accelerator.toml"


def write_private(path: Path, text: str) -> None:
    """Write a file only root can read, via a temp name so readers never see half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def _new_secrets() -> dict[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    return {
        "access_key": "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        "secret_key": secrets.token_urlsafe(30),
        "admin_password": secrets.token_urlsafe(12),
        "db_password": secrets.token_hex(12),
        "storage_manager_secret": secrets.token_hex(16),
        "storage_jwt_secret": secrets.token_hex(16),
        "manager_secret": secrets.token_hex(16),
        "user_uuid": str(uuid.uuid4()),
        "group_uuid": str(uuid.uuid4()),
    }


def load_secrets(layout: SandboxLayout) -> dict[str, str]:
    """The sandbox's keys and passwords, generated on first use and kept with its data (a key
    added in a later version of this module is generated then, the others are kept)."""
    known = json.loads(layout.secrets.read_text()) if layout.secrets.exists() else {}
    values = {**_new_secrets(), **known}
    if values != known:
        layout.cfg.mkdir(parents=True, exist_ok=True)
        write_private(layout.secrets, json.dumps(values, indent=1))
    return values


def client_environment(layout: SandboxLayout) -> dict[str, str]:
    keys = load_secrets(layout)
    return {"BACKEND_ENDPOINT": layout.endpoint, "BACKEND_ENDPOINT_TYPE": "api",
            "BACKEND_ACCESS_KEY": keys["access_key"], "BACKEND_SECRET_KEY": keys["secret_key"]}


def agent_extras(layout: SandboxLayout, options: SandboxOptions) -> str:
    """What the options add to the rendered agent.toml: the log cap, and the second agent of a two-agent
    sandbox (26.x's [[agents]]: its own id, socket port, half of the container ports and scratch folder;
    each agent reports the whole machine, so a session may put each container on either)."""
    extra = ""
    if options.log_cap:
        extra += f'\n[container-logs]\nmax-length = "{options.log_cap}"\n'
    if options.agents > 1:
        first, last = layout.ports.container_range
        half = (last - first + 1) // options.agents
        for index, agent_id in enumerate(layout.agent_ids(options.agents)):
            low = first + index * half
            extra += (f'\n[[agents]]\n[agents.agent]\nid = "{agent_id}"\n'
                      f"agent-sock-port = {layout.ports.agent_sock + index}\n"
                      f"[agents.container]\nport-range = [{low}, {low + half - 1}]\n"
                      f'scratch-root = "{layout.root}/scratches{"" if index == 0 else f"-{index}"}"\n')
    return extra


def write_configs(layout: SandboxLayout, session_ids: tuple[int, int] = (0, 0),
                  options: SandboxOptions | None = None) -> None:
    """Render the line's config templates (every `up`, so a changed template or port base takes effect).

    `session_ids`: uid and gid of the sessions' user and the storage proxy (install.ensure_session_user).
    """
    options = options or SandboxOptions()
    ports = layout.ports
    first, last = ports.container_range
    values = {**load_secrets(layout), **ports.monitors, "root": str(layout.root),
              "etcd_port": ports.etcd, "postgres_port": ports.postgres, "manager_port": ports.manager,
              "manager_internal_port": ports.manager_internal, "agent_rpc_port": ports.agent_rpc,
              "agent_sock_port": ports.agent_sock, "agent_service_port": ports.agent_service,
              "agent_id": layout.agent_id, "metadata_server_port": ports.metadata_server,
              "storage_client_port": ports.storage_client, "storage_manager_port": ports.storage_manager,
              "storage_internal_port": ports.storage_internal, "container_port_first": first,
              "container_port_last": last, "session_uid": session_ids[0], "session_gid": session_ids[1]}
    for template in [layout.line.templates / name for name in CONFIG_FILES] + [TEMPLATES / MOCK_ACCELERATOR]:
        text = Template(template.read_text()).substitute(values)
        if template.name == "agent.toml":
            text += agent_extras(layout, options)
        write_private(layout.cfg / template.name, text)
    write_private(layout.client_env,
                  "".join(f"{key}={value}\n" for key, value in client_environment(layout).items()))


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


def backend_ai(layout: SandboxLayout, *args: str, client: bool = False) -> list[str]:
    """The `backend.ai` command of the sandbox's virtualenv, where it runs (the host for 23.09, the
    service container for 26.x); `client` gives it the sandbox's BACKEND_* keys, from the file."""
    argv = [str(layout.bin / "backend.ai"), *args]
    if not layout.line.in_container:
        return argv
    return container.exec_argv(layout, argv, env_file=layout.client_env if client else None)


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
    return backend_ai(layout, "mgr", "-f", str(layout.cfg / "manager.toml"), *args)


def generate_rpc_keys(layout: SandboxLayout) -> None:
    for name in ("manager", "agent"):
        if not (layout.cfg / f"{name}.key_secret").exists():
            run_logged(layout, f"{name} RPC keypair",
                       backend_ai(layout, "mgr", "generate-rpc-keypair", str(layout.cfg), name))


def _populate_fixture(layout: SandboxLayout, name: str, content: dict) -> None:
    write_private(layout.cfg / name, json.dumps(content, indent=1))
    run_logged(layout, f"fixture {name}", manager_cli(layout, "fixture", "populate", str(layout.cfg / name)))


def populate(layout: SandboxLayout, registries: Sequence[str]) -> None:
    """Schema, fixtures and etcd configuration: once per sandbox data folder."""
    keys = load_secrets(layout)
    run_logged(layout, "schema", manager_cli(layout, "schema", "oneshot", "-f",
                                             str(layout.cfg / "alembic.ini")))
    if layout.line.name == "26.4":
        _populate_fixture(layout, "fixture.json", fixtures.fixtures_2604(keys, registries))
    elif layout.line.in_container:
        _populate_fixture(layout, "fixture.json", fixtures.fixtures_26(keys, registries))
    else:
        _populate_fixture(layout, "fixture.json", fixtures.fixtures_2309(keys, registries))
    if not layout.line.in_container or layout.line.name == "26.4":
        _populate_fixture(layout, "fixture-main-key.json", fixtures.main_access_key_fixture(keys))
    write_private(layout.cfg / "etcd-volumes.json", json.dumps(fixtures.etcd_volumes(layout, keys), indent=1))
    run_logged(layout, "etcd volumes", manager_cli(layout, "etcd", "put-json", "volumes",
                                                   str(layout.cfg / "etcd-volumes.json")))


def configure_registries(layout: SandboxLayout, registries: Sequence[str], projects: Sequence[str]) -> None:
    """The registries the agent pulls from (and, on 26.x, one row per project the manager scans):
    every one ever asked for, configured again only when one is new."""
    record = layout.run / "registries.json"
    known = json.loads(record.read_text()) if record.exists() else {"registries": [], "projects": []}
    wanted = {"registries": sorted({*known["registries"], *registries}),
              "projects": sorted({*known["projects"], *projects})}
    if wanted == known:
        return
    registries, projects = wanted["registries"], wanted["projects"]
    write_private(layout.cfg / "etcd-config.json", json.dumps(fixtures.etcd_config(layout, registries), indent=1))
    run_logged(layout, "etcd config", manager_cli(layout, "etcd", "put-json", "config",
                                                  str(layout.cfg / "etcd-config.json")))
    _populate_fixture(layout, "fixture-registries-allowed.json", fixtures.allowed_registries(registries))
    if layout.line.in_container:
        _populate_fixture(layout, "fixture-registries.json", fixtures.registry_rows(registries, projects))
    record.write_text(json.dumps(wanted) + "\n")
