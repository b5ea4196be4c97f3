"""What the client costs the manager while a run goes on, measured in one run against its peer:

the project's client (common/backendai/api.py: status polls, output read from a file in a folder, only
what it added) and the client it replaced (the 23.09 SDK: an event stream, status polls, the whole
container log fetched every 3 s), each following the same batch session that prints a line of 100
bytes every second for --minutes; a counting TCP proxy between client and manager gives the requests
made and the bytes each way (one proxy per client, one client after the other). The
project's client is also measured without an output folder (the container log, every 10 s).

The peer is the previous tree of the project (a checkout, e.g. `git worktree add /tmp/old-client
<commit before the client change>`), run by a Python that has backend.ai-client 23.9 (Python 3.11):

    .venv/bin/python perf/bai_client.py --client-env /tmp/mlperf-bai-sandbox-test/26.9/cfg/client.env \\
        --image 127.0.0.1:5000/mlperf-bai-t30000/sandbox-batch:3.11-debian12 --old-tree /tmp/old-client \\
        --old-python /path/to/python3.11-with-the-sdk [--minutes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.backendai import client as bai_client  # noqa: E402

OLD_RUN = """
import os, sys
from common.backendai import client
job = client.BatchJob(image=sys.argv[1], command=sys.argv[2], timeout=float(sys.argv[3]))
result = client.run_batch(job, config=client.api_config(os.environ), on_output=lambda line: None)
print("exit", result.exit_code)
"""


@dataclass
class Counts:
    requests: int = 0
    sent: int = 0
    received: int = 0
    # requests by what they ask for: session logs, GraphQL (status), folders and transfers, other
    kinds: dict[str, int] = field(default_factory=dict)


class CountingProxy:
    """127.0.0.1:<port> -> the manager, counting HTTP requests (request lines) and bytes each way."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.counts = Counts()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.AbstractServer | None = None
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait()

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        started.set()
        self.loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if upstream:
                    self.counts.sent += len(chunk)
                    for path in re.findall(rb"^(?:GET|POST|DELETE|PATCH|HEAD) (\S+) HTTP", chunk, re.M):
                        self.counts.requests += 1
                        kind = ("logs" if b"/logs" in path else "graphql" if b"/admin/gql" in path else
                                "folders" if b"/folders" in path else "events" if b"/events" in path else "other")
                        self.counts.kinds[kind] = self.counts.kinds.get(kind, 0) + 1
                else:
                    self.counts.received += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(self.host, self.port)
        await asyncio.gather(self._pipe(client_reader, server_writer, True),
                             self._pipe(server_reader, client_writer, False))

    def take(self) -> Counts:
        counts, self.counts = self.counts, Counts()
        return counts


def command(minutes: float) -> str:
    return (f"python3 -c \"import time\nfor n in range({int(minutes * 60)}):\n"
            f"    print('tick %06d ' % n + 'x' * 88, flush=True); time.sleep(1)\"")


def ours(proxy: CountingProxy, image: str, minutes: float, environ: dict[str, str], *, folder: bool) -> Counts:
    config = bai_client.api_config({**environ, "BACKEND_ENDPOINT": proxy.endpoint})
    name = f"perf-client-{uuid.uuid4().hex[:8]}"
    mounts = {"perf-client-out": None} if folder else {}
    if folder:
        bai_client.ensure_vfolder("perf-client-out", config=config)
    proxy.take()
    job = bai_client.BatchJob(image=image, command=command(minutes), timeout=minutes * 60 + 600, name=name,
                              mounts=mounts, output_file=("perf-client-out", f"{name}/output.txt") if folder else None)
    last: collections.deque[str] = collections.deque(maxlen=5)
    result = bai_client.run_batch(job, config=config, on_output=last.append)
    counts = proxy.take()
    if folder:
        bai_client.delete_vfolder("perf-client-out", config=config)
    assert result.exit_code == 0, (f"exit code {result.exit_code}, status {result.status}; last output: {list(last)}; "
                                   f"log: {result.logs[-1500:]}")
    return counts


def theirs(proxy: CountingProxy, image: str, minutes: float, environ: dict[str, str], old_tree: Path,
           old_python: str) -> Counts:
    proxy.take()
    result = subprocess.run([old_python, "-c", OLD_RUN, image, command(minutes), str(minutes * 60 + 600)],
                            env={**environ, "BACKEND_ENDPOINT": proxy.endpoint, "PYTHONPATH": str(old_tree)},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "exit 0" in result.stdout, result.stderr[-3000:]
    return proxy.take()


def show(name: str, counts: Counts, minutes: float) -> None:
    kinds = ", ".join(f"{kind} {number}" for kind, number in sorted(counts.kinds.items()))
    print(f"{name:48} {counts.requests:6d} requests ({counts.requests / minutes:6.1f}/min: {kinds}), "
          f"{counts.received / 1e6:8.2f} MB from the manager, {counts.sent / 1e6:6.2f} MB to it")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="a registered image with python3")
    parser.add_argument("--client-env", type=Path, required=True, help="the sandbox's client.env")
    parser.add_argument("--old-tree", type=Path, required=True, help="a checkout of the previous client")
    parser.add_argument("--old-python", required=True, help="a Python with backend.ai-client 23.9")
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    environ = {**os.environ, **dict(line.split("=", 1) for line in args.client_env.read_text().splitlines()
                                    if "=" in line)}
    runs = {
        "previous client (23.09 SDK: events + whole log)":
            lambda proxy: theirs(proxy, args.image, args.minutes, environ, args.old_tree, args.old_python),
        "this client, output file in a folder":
            lambda proxy: ours(proxy, args.image, args.minutes, environ, folder=True),
        "this client, container log": lambda proxy: ours(proxy, args.image, args.minutes, environ, folder=False),
    }
    print(f"one batch session printing 100 bytes a second for {args.minutes:g} minutes, followed by each client:")
    for name, run in runs.items():
        show(name, run(CountingProxy(environ["BACKEND_ENDPOINT"])), args.minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
