"""An HTTP file server on 127.0.0.1 for download tests, with faults injected per request.

Faults are queued per path and consumed one per request; the server logs every request (path,
Range header, status, body bytes sent) so tests can prove what was fetched and what was not.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Fault:
    """What to do instead of a normal answer: an error status, or a body cut after `cut` bytes.

    `cut` with `honest_length` sends a Content-Length that matches the shortened body (a server
    that serves a truncated file); without it the full length is announced and the connection
    drops after `cut` bytes.
    """

    status: int | None = None
    cut: int | None = None
    honest_length: bool = False


@dataclass
class LogEntry:
    path: str
    range: str | None
    status: int
    sent: int


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    support_range: bool = True
    # > 0: the first requests wait until this many are in flight at once (`gather_timeout` passes only for a
    # client with less concurrency), then give one more the chance to arrive (`beyond_wait`: a client with
    # more concurrency shows it; one that keeps its bound only waits this long, once). Concurrency is
    # observed, not inferred from a timed overlap.
    gather: int = 0
    gather_timeout: float = 30.0
    beyond_wait: float = 1.0
    gathered: bool = False
    active: int = 0
    max_active: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)


_RANGE = re.compile(r"bytes=(\d+)-$")


class _Handler(BaseHTTPRequestHandler):
    state: ServerState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _record(self, status: int, sent: int) -> None:
        with self.state.lock:
            self.state.log.append(LogEntry(self.path, self.headers.get("Range"), status, sent))

    def _send(self, status: int, body: bytes, headers: dict[str, str], cut: int | None = None) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        payload = body if cut is None else body[:cut]
        self.wfile.write(payload)
        self.wfile.flush()
        self._record(status, len(payload))
        if cut is not None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)

    def do_GET(self) -> None:
        st = self.state
        with st.lock:
            st.active += 1
            st.max_active = max(st.max_active, st.active)
            queue = st.faults.get(self.path)
            fault = queue.popleft() if queue else None
            st.lock.notify_all()
            if st.gather and not st.gathered:
                st.lock.wait_for(lambda: st.max_active >= st.gather, timeout=st.gather_timeout)
                st.lock.wait_for(lambda: st.max_active > st.gather, timeout=st.beyond_wait)
                st.gathered = True
        try:
            self._answer(fault)
        finally:
            with st.lock:
                st.active -= 1

    def _answer(self, fault: Fault | None) -> None:
        data = self.state.files.get(self.path)
        if fault and fault.status:
            self._send(fault.status, b"injected error\n", {"Content-Length": "15"})
            return
        if data is None:
            self._send(404, b"not found\n", {"Content-Length": "10"})
            return
        start, status, headers = 0, 200, {}
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and self.state.support_range:
            start = int(match.group(1))
            if start >= len(data):
                self._send(416, b"", {"Content-Length": "0", "Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        cut = fault.cut if fault else None
        length = len(body) if cut is None or not fault.honest_length else min(cut, len(body))
        headers["Content-Length"] = str(length)
        headers["Accept-Ranges"] = "bytes" if self.state.support_range else "none"
        self._send(status, body, headers, cut)


class FaultServer:
    """Serves `state.files` at http://127.0.0.1:<port>/<path>."""

    def __init__(self) -> None:
        self.state = ServerState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def add(self, path: str, data: bytes, *faults: Fault) -> str:
        self.state.files[path] = data
        self.state.faults[path] = deque(faults)
        return self.url(path)

    def requests_for(self, path: str) -> list[LogEntry]:
        return [e for e in self.state.log if e.path == path]

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
