"""Run Debian's docker-registry (the distribution server at the core of Harbor) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from .system import HarnessError, ensure_commands, port_open, wait_until

DEFAULT_PORT = 5000


@dataclass
class RegistryServer:
    """One registry process; `config` is merged over a plain-HTTP, filesystem-backed default."""

    port: int
    root: Path
    config: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def full_config(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": "harness-only"},
        }
        for key, value in self.config.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return base

    def start(self, timeout: float = 30) -> RegistryServer:
        ensure_commands("docker-registry")
        if port_open("127.0.0.1", self.port):
            raise HarnessError(f"port {self.port} is taken; cannot start a registry there")
        self.root.mkdir(parents=True, exist_ok=True)
        config_path = self.root / "config.yml"
        config_path.write_text(json.dumps(self.full_config(), indent=2))
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the server
        self.process = subprocess.Popen(["docker-registry", "serve", str(config_path)],
                                        stdout=log, stderr=log, start_new_session=True)

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise HarnessError(f"registry exited with {self.process.returncode}; "
                                   f"see {self.log_path}")
            return port_open("127.0.0.1", self.port)

        wait_until(ready, timeout, f"registry on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def check_pushable(host: str, repository: str = "mlperf-bai-harness/probe") -> None:
    """`host` answers the registry v2 API over plain HTTP and accepts an anonymous upload (started, then
    cancelled); anything else on the port (another program, a registry with auth or read-only) is named."""
    def ask(method: str, url: str) -> tuple[int, Message]:
        request = urllib.request.Request(url, method=method, headers={"Content-Length": "0"})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, reply.headers
        except urllib.error.HTTPError as error:
            return error.code, error.headers
        except (urllib.error.URLError, OSError) as error:
            raise HarnessError(f"{host} accepts connections but does not answer HTTP ({error}); the tests need "
                               "a plain-HTTP registry there") from error

    status, headers = ask("GET", f"http://{host}/v2/")
    if status != 200 or headers.get("Docker-Distribution-Api-Version") != "registry/2.0":
        raise HarnessError(f"{host} is not a registry the tests can use: GET /v2/ answered HTTP {status} "
                           f"(Server: {headers.get('Server', '?')}), not 200 with Docker-Distribution-Api-Version "
                           "registry/2.0; stop what holds the port")
    status, headers = ask("POST", f"http://{host}/v2/{repository}/blobs/uploads/")
    if status != 202 or "Location" not in headers:
        raise HarnessError(f"the registry on {host} refuses uploads (HTTP {status} to starting one in "
                           f"{repository}); the tests push images there")
    location = urllib.parse.urljoin(f"http://{host}/", headers["Location"])
    ask("DELETE", location)


def ensure_default_registry(port: int = DEFAULT_PORT) -> str:
    """A long-lived plain-HTTP registry shared by tests (and by .ci/run); returns host:port. One already
    on the port is used only when it is a registry the tests can push to."""
    if port_open("127.0.0.1", port):
        check_pushable(f"127.0.0.1:{port}")
        return f"127.0.0.1:{port}"
    root = Path(tempfile.gettempdir()) / "mlperf-bai-harness" / f"registry-{port}"
    RegistryServer(port=port, root=root).start()
    return f"127.0.0.1:{port}"
