"""Time the local Backend.AI sandbox of each line, measured in one run:

- `up` from nothing (the sandbox folder purged first: virtualenv, database, keys, all; for 26.x the
  Debian 13 root filesystem image too, unless another container uses it);
- a second `up` (finds it running);
- `up` warm: after `down --remove-data`, with the virtualenv (and root filesystem) kept;
- one batch session round trip (create, run `python3 -c ...`, exit code and logs back) against its
  peer, `docker run --rm` of the same image and command: the ratio is what Backend.AI adds;
- `down`.

Usage: .venv/bin/python perf/bai_sandbox.py [--version 23.09 --version 26.9] [--root DIR]
       [--port-base 42000] [--repeat 3] [--keep-venv]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from common.backendai import client as bai_client  # noqa: E402
from common.backendai import register as bai_register  # noqa: E402
from common.backendai.sandbox import bootstrap, container, control  # noqa: E402
from common.backendai.sandbox.layout import SandboxLayout, SandboxPorts  # noqa: E402
from common.backendai.sandbox.lines import line_of  # noqa: E402
from common.labels.dockerfile import inject_labels  # noqa: E402
from common.labels.rules import resolve_labels  # noqa: E402
from tests.harness.base_image import ensure_base_image  # noqa: E402
from tests.harness.registry import ensure_default_registry  # noqa: E402

COMMAND = "python3 -c 'import sys; print(\"out\"); print(\"err\", file=sys.stderr)'"


def timed(step):
    start = time.monotonic()
    result = step()
    return result, time.monotonic() - start


def build_image(registry: str, project: str) -> str:
    reference = f"{registry}/{project}/sandbox-batch:3.11-debian12"
    dockerfile = inject_labels(f"FROM {ensure_base_image()}\n", resolve_labels(profile="cpu")).text
    engine = docker.from_env()
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=reference, rm=True)
    for line in engine.images.push(reference, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push of {reference} failed: {line['error']}")
    return reference


def from_nothing(layout: SandboxLayout, keep_venv: bool) -> str:
    """Purge the sandbox (and, for 26.x, its root filesystem image where no container uses it)."""
    if layout.root.exists():
        control.down(layout, remove_data=True, purge=not keep_venv)
    if keep_venv or not layout.line.in_container:
        return "up without pip (venv kept)" if keep_venv else "up from nothing"
    tag = container.rootfs_image(layout.line.python)
    removed = subprocess.run(["docker", "rmi", tag], capture_output=True).returncode == 0
    return "up from nothing" if removed or not container.image_exists(tag) else "up (rootfs image in use, kept)"


def measure(layout: SandboxLayout, registry: str, repeat: int, keep_venv: bool) -> list[tuple[str, str]]:
    project = f"mlperf-bai-perf{layout.ports.base}"
    quiet = {"progress": lambda _: None, "projects": [project]}
    what = from_nothing(layout, keep_venv)
    _, first_up = timed(lambda: control.up(layout, [registry], **quiet))
    outcome, second_up = timed(lambda: control.up(layout, [registry], **quiet))
    assert outcome == "running", outcome
    control.down(layout, remove_data=True)
    _, warm_up = timed(lambda: control.up(layout, [registry], **quiet))
    try:
        config = bai_client.api_config(bootstrap.client_environment(layout))
        image = build_image(registry, project)
        _, register = timed(lambda: bai_register.register(image, config=config))
        release = str(bai_client.server(config))
        job = bai_client.BatchJob(image=image, command=COMMAND)
        batch, plain = [], []
        for _ in range(repeat):
            result, seconds = timed(lambda: bai_client.run_batch(job, config=config))
            assert result.exit_code == 0, result.logs
            batch.append(seconds)
            done, seconds = timed(lambda: subprocess.run(["docker", "run", "--rm", image, "sh", "-c", COMMAND],
                                                         capture_output=True))
            assert done.returncode == 0, done.stderr
            plain.append(seconds)
    finally:
        _, down = timed(lambda: control.down(layout))
    size = subprocess.run(["du", "-sm", str(layout.root)], capture_output=True, text=True).stdout.split()[0]
    return [
        (what, f"{first_up:8.1f} s"),
        ("second up (already running)", f"{second_up:8.2f} s"),
        ("up warm (venv kept, data removed)", f"{warm_up:8.1f} s"),
        ("register (rescan)", f"{register:8.2f} s   {release}"),
        ("batch round trip (median)", f"{statistics.median(batch):8.2f} s   runs: "
         + ", ".join(f"{s:.2f}" for s in batch)),
        ("docker run --rm, same job (median)", f"{statistics.median(plain):8.2f} s   runs: "
         + ", ".join(f"{s:.2f}" for s in plain)),
        ("ratio batch / docker run", f"{statistics.median(batch) / statistics.median(plain):8.1f} x"),
        ("down", f"{down:8.1f} s"),
        ("sandbox folder size", f"{size:>8} MiB"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="append", help="Backend.AI line (repeatable; default 23.09, 26.9)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/mlperf-bai-perf-sandbox"))
    parser.add_argument("--port-base", type=int, default=42000, help="plus each line's offset")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-venv", action="store_true",
                        help="keep the installed virtualenv (measures up without pip)")
    args = parser.parse_args()
    registry = ensure_default_registry()
    for name in args.version or ["23.09", "26.9"]:
        line = line_of(name)
        layout = SandboxLayout((args.root / line.name).resolve(), SandboxPorts(args.port_base + line.port_offset),
                               line)
        print(f"== Backend.AI {line.release} ({layout.root}, port base {layout.ports.base})", flush=True)
        for label, value in measure(layout, registry, args.repeat, args.keep_venv):
            print(f"{label:36} {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
