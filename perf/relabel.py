"""Relabel a >= 1 GB image in the local registry two ways, measured in the same run:

- in the registry (images.relabel): read manifest + config, write config + manifest;
- the Docker-engine way: docker pull, docker build (FROM + LABEL), docker push.

Both go through a byte-counting TCP proxy in front of the registry, so "bytes moved" is measured the
same way for both. Prints bytes and seconds for each and the ratios.

Usage: .venv/bin/python perf/relabel.py [--size-mb 1100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.labels.rules import resolve_labels  # noqa: E402
from common.registry.client import RegistryClient  # noqa: E402
from common.registry.copy import push_plan  # noqa: E402
from common.registry.reference import parse_reference  # noqa: E402
from common.registry.relabel import LabelEdit, plan_relabel  # noqa: E402
from tests.harness.base_image import ensure_base_image  # noqa: E402
from tests.harness.registry import ensure_default_registry  # noqa: E402
from tests.harness.system import free_port  # noqa: E402

REPOSITORY = "perf/relabel-big"
PROFILE = "cpu"


class CountingProxy:
    """TCP proxy 127.0.0.1:<port> -> registry; counts every byte in both directions."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.bytes = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 20):
                sink.sendall(data)
                with self._lock:
                    self.bytes += len(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def take(self) -> int:
        with self._lock:
            value, self.bytes = self.bytes, 0
        return value


def sh(*args: str, quiet: bool = True) -> str:
    result = subprocess.run(args, capture_output=quiet, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {result.stderr}")
    return result.stdout or ""


def ensure_big_image(registry: str, size_mb: int) -> str:
    """FROM the base image + one layer of random (incompressible) bytes, pushed once and reused."""
    ref = f"{registry}/{REPOSITORY}:src-{size_mb}m"
    if subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                      capture_output=True).returncode == 0:
        return ref
    base = ensure_base_image()
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(
            f"FROM {base}\nRUN head -c {size_mb}M /dev/urandom > /payload.bin\n")
        print(f"building and pushing {ref} (once) ...", file=sys.stderr)
        sh("docker", "build", "-q", "-t", ref, context)
    sh("docker", "push", ref)
    sh("docker", "rmi", ref)
    return ref


def timed(proxy: CountingProxy, *commands: list[str]) -> tuple[float, int]:
    proxy.take()
    start = time.perf_counter()
    for command in commands:
        sh(*command)
    return time.perf_counter() - start, proxy.take()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1100)
    args = parser.parse_args()
    registry = ensure_default_registry()
    source = ensure_big_image(registry, args.size_mb)
    proxy = CountingProxy(int(registry.rpartition(":")[2]))
    via = source.replace(registry, f"127.0.0.1:{proxy.port}", 1)
    manifest = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{source}"))
    image_bytes = sum(layer["size"] for layer in manifest["layers"])
    stamp = str(int(time.time()))
    labels = resolve_labels(PROFILE, {"org.example.relabelled": stamp})

    registry_way = via.rsplit(":", 1)[0] + f":registry-{stamp}"
    cli_seconds, cli_bytes = timed(proxy, [
        sys.executable, "-m", "invoke", "images.relabel", via, "--profile", PROFILE, "--label",
        f"org.example.relabelled={stamp}", "--to", registry_way, "--insecure"])
    proxy.take()
    start = time.perf_counter()
    reference = parse_reference(via)
    client = RegistryClient(reference.api_host, insecure=True)
    plan = plan_relabel(client, reference, LabelEdit({**labels, "org.example.relabelled": f"{stamp}-api"}))
    push_plan(plan, client, client, parse_reference(registry_way + "-api"))
    registry_seconds, registry_bytes = time.perf_counter() - start, proxy.take()

    docker_way = via.rsplit(":", 1)[0] + f":docker-{stamp}"
    with tempfile.TemporaryDirectory() as context:
        label_lines = "".join(f'LABEL "{k}"="{v}"\n' for k, v in labels.items())
        (Path(context) / "Dockerfile").write_text(f"FROM {via}\n{label_lines}")
        docker_seconds, docker_bytes = timed(
            proxy, ["docker", "pull", "-q", via], ["docker", "build", "-q", "-t", docker_way, context],
            ["docker", "push", "-q", docker_way])
    sh("docker", "rmi", docker_way, via)

    print(f"image: {source} ({image_bytes / 1e9:.2f} GB compressed)")
    rows = [("registry relabel (library call)", registry_bytes, registry_seconds),
            ("registry relabel (invoke CLI, with interpreter start)", cli_bytes, cli_seconds),
            ("docker pull + build FROM/LABEL + push", docker_bytes, docker_seconds)]
    for name, moved, seconds in rows:
        print(f"{name:<55} {moved:>15,d} bytes  {seconds:8.2f} s")
    for name, moved, seconds in rows[:2]:
        print(f"docker / {name}: bytes x{docker_bytes / moved:,.0f}, time x{docker_seconds / seconds:,.1f}")


if __name__ == "__main__":
    main()
