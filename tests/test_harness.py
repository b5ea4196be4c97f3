"""The harness takes a registry already on its port only when the tests can push to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.harness.registry import RegistryServer, ensure_default_registry
from tests.harness.system import HarnessError, free_port


class _NotARegistry(BaseHTTPRequestHandler):
    server_version, sys_version = "some-web-app/1.0", ""

    def do_GET(self) -> None:
        body = b"<html>a web app</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def web_app() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotARegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_another_program_on_the_registry_port_is_named_not_used(web_app: int) -> None:
    with pytest.raises(HarnessError, match=rf"127\.0\.0\.1:{web_app} is not a registry .*HTTP 200 \(Server: "
                                           r"some-web-app/1\.0 ?\)"):
        ensure_default_registry(web_app)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.registry
def test_a_registry_that_refuses_pushes_is_named_and_a_writable_one_is_used(tmp_path: Path) -> None:
    read_only = RegistryServer(free_port(), tmp_path / "read-only",
                               {"storage": {"maintenance": {"readonly": {"enabled": True}}}}).start()
    writable = RegistryServer(free_port(), tmp_path / "writable").start()
    try:
        with pytest.raises(HarnessError, match=r"refuses uploads \(HTTP 405"):
            ensure_default_registry(read_only.port)
        assert ensure_default_registry(writable.port) == writable.host
    finally:
        read_only.stop()
        writable.stop()
