"""Time the local Backend.AI sandbox, measured in one run:

- `up` from nothing (the sandbox folder purged first: virtualenv, database, keys, all);
- a second `up` (finds it running);
- one batch session round trip (create, run `python3 -c ...`, exit code and logs back) against its
  peer, `docker run --rm` of the same image and command: the ratio is what Backend.AI adds;
- `down`.

Usage: .venv/bin/python perf/bai_sandbox.py [--root DIR] [--port-base 38000] [--repeat 3] [--keep-venv]
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
from common.backendai.sandbox import bootstrap, control  # noqa: E402
from common.backendai.sandbox.layout import SandboxLayout, SandboxPorts  # noqa: E402
from common.labels.dockerfile import inject_labels  # noqa: E402
from common.labels.rules import resolve_labels  # noqa: E402
from tests.harness.base_image import ensure_base_image  # noqa: E402
from tests.harness.registry import ensure_default_registry  # noqa: E402

COMMAND = "python3 -c 'import sys; print(\"out\"); print(\"err\", file=sys.stderr)'"


def timed(step):
    start = time.monotonic()
    result = step()
    return result, time.monotonic() - start


def build_image(registry: str) -> str:
    reference = f"{registry}/mlperf-bai-perf/sandbox-batch:3.11-debian12"
    dockerfile = inject_labels(f"FROM {ensure_base_image()}\n", resolve_labels(profile="cpu")).text
    engine = docker.from_env()
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=reference, rm=True)
    for line in engine.images.push(reference, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push of {reference} failed: {line['error']}")
    return reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/mlperf-bai-perf-sandbox"))
    parser.add_argument("--port-base", type=int, default=38000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-venv", action="store_true",
                        help="keep the installed virtualenv (measures up without pip)")
    args = parser.parse_args()
    layout = SandboxLayout(args.root.resolve(), SandboxPorts(args.port_base))
    registry = ensure_default_registry()
    if layout.root.exists():
        control.down(layout, remove_data=True, purge=not args.keep_venv)
    _, first_up = timed(lambda: control.up(layout, [registry], progress=lambda _: None))
    outcome, second_up = timed(lambda: control.up(layout, [registry], progress=lambda _: None))
    assert outcome == "running", outcome
    try:
        config = bai_client.api_config(bootstrap.client_environment(layout))
        image = build_image(registry)
        _, register = timed(lambda: bai_register.register(image, config=config))
        job = bai_client.BatchJob(image=image, command=COMMAND)
        batch, plain = [], []
        for _ in range(args.repeat):
            result, seconds = timed(lambda: bai_client.run_batch(job, config=config))
            assert result.exit_code == 0, result.logs
            batch.append(seconds)
            done, seconds = timed(lambda: subprocess.run(["docker", "run", "--rm", image, "sh", "-c", COMMAND],
                                                         capture_output=True))
            assert done.returncode == 0, done.stderr
            plain.append(seconds)
    finally:
        _, down = timed(lambda: control.down(layout))
    what = "up without pip (venv kept)" if args.keep_venv else "up from nothing"
    print(f"{what:34} {first_up:8.1f} s")
    print(f"{'second up (already running)':34} {second_up:8.2f} s")
    print(f"{'register (wrap + rescan)':34} {register:8.2f} s")
    print(f"{'batch round trip (median)':34} {statistics.median(batch):8.2f} s   runs: "
          + ", ".join(f"{s:.2f}" for s in batch))
    print(f"{'docker run --rm, same job (median)':34} {statistics.median(plain):8.2f} s   runs: "
          + ", ".join(f"{s:.2f}" for s in plain))
    print(f"{'ratio batch / docker run':34} {statistics.median(batch) / statistics.median(plain):8.1f} x")
    print(f"{'down':34} {down:8.1f} s")
    size = subprocess.run(["du", "-sm", str(layout.root)], capture_output=True, text=True).stdout.split()[0]
    print(f"{'sandbox folder size':34} {size:>8} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
