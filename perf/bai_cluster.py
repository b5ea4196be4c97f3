"""What running MLPerf on a Backend.AI cluster costs over running it here, measured in one run:

- the Mask R-CNN sample run as a batch session (`invoke maskrcnn.run --on-cluster --sample`) against the
  same run of `run_and_time` on this machine: seconds of overhead (session start, data mount, log
  download) and their share of the run;
- the same run as a two-container cluster session, its containers on one agent (single-node mode) against
  on two agents (multi-node mode, over the swarm overlay; needs a sandbox with `--agents 2`);
- uploading a prepared dataset into a virtual folder with `prepare --upload` (records, resumable) against
  the 23.09 SDK's own recursive upload of the same files (where backend.ai-client 23.9 is installed, a
  Python 3.11 peer): ratio; then a second, no-op upload.

Needs a running sandbox (or any cluster: BACKEND_* from the environment or --client-env) and a
registered Mask R-CNN image that trains (tests/backendai/conftest.py builds one):

    .venv/bin/python perf/bai_cluster.py \\
        --image 127.0.0.1:5000/mlperf-bai-t30000/mlperf-maskrcnn:0.1.0-cuda12.4-py3.11 \\
        --client-env /tmp/mlperf-bai-sandbox-test/26.9/cfg/client.env
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.backendai import client as bai_client  # noqa: E402
from common.backendai import datasets  # noqa: E402


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}"
                         f"{result.stderr[-3000:]}")
    return time.monotonic() - start, result.stdout


def run_overhead(image: str, env: dict[str, str], scratch: Path) -> None:
    local_data = scratch / "local-data"
    subprocess.run([sys.executable, "-m", "object_detection.download_dataset", "--sample", "--data-dir",
                    str(local_data)], cwd=ROOT, env=env, check=True, capture_output=True)
    vfolder = "perf-coco"
    timed([sys.executable, "-m", "invoke", "maskrcnn.prepare", "--on-cluster", "--sample", "--vfolder", vfolder,
           "--image", image], env)
    common = ["--sample", "--seed", "1"]
    local, _ = timed([sys.executable, "-m", "object_detection.run_and_time", "--data-dir", str(local_data),
                      "--results-dir", str(scratch / "local-results"), *common], env)
    cluster, _ = timed([sys.executable, "-m", "invoke", "maskrcnn.run", "--on-cluster", "--vfolder", vfolder,
                        "--image", image, "--cpus-per-node", "2", "--mem-per-node", "6g",
                        "--results-dir", str(scratch / "cluster-results"), *common], env)
    print(f"sample run here: {local:.1f} s; as a batch session: {cluster:.1f} s; "
          f"overhead {cluster - local:+.1f} s ({(cluster - local) / local:+.1%} of the run)")
    two = ["maskrcnn.run", "--on-cluster", "--vfolder", vfolder, "--image", image, "--nodes", "2",
           "--cpus-per-node", "2", "--mem-per-node", "6g", *common]
    single, _ = timed([sys.executable, "-m", "invoke", *two, "--cluster-mode", "single-node",
                       "--results-dir", str(scratch / "single-node")], env)
    multi, _ = timed([sys.executable, "-m", "invoke", *two, "--cluster-mode", "multi-node",
                      "--results-dir", str(scratch / "multi-node")], env)
    print(f"two containers on one agent (single-node): {single:.1f} s; on two agents (multi-node): {multi:.1f} s; "
          f"{multi / single:.2f}x ({multi - single:+.1f} s)")
    bai_client.delete_vfolder(vfolder)


def make_dataset(root: Path) -> int:
    """A prepared-dataset shape: a few large archives and many small images (COCO's mix, scaled down)."""
    total = 0
    for i in range(4):
        path = root / "downloads" / f"archive-{i}.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(16 << 20))
        total += 16 << 20
    for i in range(400):
        path = root / "coco" / "train2017" / f"{i:012d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(40_000))
        total += 40_000
    return total


def sdk_upload(vfolder: str, source: Path) -> None:
    """The peer: the 23.09 SDK's own recursive upload of the same tree."""
    from ai.backend.client.config import APIConfig  # noqa: PLC0415 - the peer only, Python 3.11
    from ai.backend.client.session import AsyncSession  # noqa: PLC0415

    ours = bai_client.api_config()
    config = APIConfig(endpoint=ours.endpoint, access_key=ours.access_key, secret_key=ours.secret_key)

    async def work() -> None:
        async with AsyncSession(config=config) as api:
            await api.VFolder(vfolder).upload([str(p) for p in source.iterdir()], basedir=source, recursive=True)

    asyncio.run(work())


def upload_ratio(scratch: Path) -> None:
    source = scratch / "prepared"
    size = make_dataset(source)
    files = sum(1 for p in source.rglob("*") if p.is_file())
    bai_client.ensure_vfolder("perf-sdk-upload")
    start = time.monotonic()
    sdk_upload("perf-sdk-upload", source)
    sdk = time.monotonic() - start
    start = time.monotonic()
    report = datasets.upload_prepared(source, "perf-upload", progress=False)
    ours = time.monotonic() - start
    start = time.monotonic()
    again = datasets.upload_prepared(source, "perf-upload", progress=False)
    noop = time.monotonic() - start
    print(f"upload of {files} files, {size / 1e6:.0f} MB: SDK {sdk:.1f} s, prepare --upload {ours:.1f} s "
          f"({ours / sdk:.2f}x the SDK's time, {len(report.uploaded)} files sent); second upload {noop:.1f} s "
          f"({len(again.uploaded)} files sent, {len(again.skipped)} skipped)")
    for name in ("perf-sdk-upload", "perf-upload"):
        bai_client.delete_vfolder(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="a registered Mask R-CNN image that trains here")
    parser.add_argument("--client-env", type=Path, help="a sandbox's client.env (else BACKEND_* from the env)")
    parser.add_argument("--skip-run", action="store_true", help="only the upload figures")
    parser.add_argument("--skip-upload", action="store_true", help="only the run figures")
    args = parser.parse_args()
    if args.client_env:
        for line in args.client_env.read_text().splitlines():
            key, _, value = line.partition("=")
            os.environ[key] = value
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="perf-bai-cluster-") as scratch:
        if not args.skip_run:
            run_overhead(args.image, env, Path(scratch))
        if not args.skip_upload:
            upload_ratio(Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
