"""Image build figures: one entry cold (no layer cache) against the same entry warm and against the
other benchmark on the shared runtime, the size each image adds over its base, and test_images per image.

Runs on the local base with a CPU PyTorch from the local wheelhouse, like the tests:
    .venv/bin/python perf/images.py
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.imagebuild.build import BuildOptions, build_entry
from common.imagebuild.contract import check_image
from common.imagebuild.matrix import load_matrix
from common.imagebuild.selection import Target
from tests.harness.base_image import ensure_base_image
from tests.imagebuild.wheelhouse import TORCH_CPU, ensure_wheelhouse, wheelhouse_index

WHEELHOUSE = Path("/tmp/mlperf-bai-harness/wheelhouse")
MB = 1024 * 1024


def timed_build(client: docker.APIClient, entry, target: Target, options: BuildOptions) -> float:
    started = time.monotonic()
    build_entry(client, entry, target, options, log=io.StringIO())
    return time.monotonic() - started


def main() -> int:
    base = ensure_base_image()
    matrix = load_matrix()
    maskrcnn, gnmt = (matrix.select([b], ["12.4"], ["3.11"])[0] for b in ("maskrcnn", "gnmt"))
    target = Target(matrix, (maskrcnn, gnmt), "127.0.0.1:5000", "perf", None)
    api, client = docker.APIClient(), docker.from_env()
    index = wheelhouse_index(ensure_wheelhouse(WHEELHOUSE, torch=[TORCH_CPU]))
    options = BuildOptions(base_image=base, torch_requirement=TORCH_CPU, torch_index_url=index,
                           pip_index_url=index, network_mode="host")
    cold = timed_build(api, maskrcnn, target, BuildOptions(**{**options.__dict__, "nocache": True}))
    warm = timed_build(api, maskrcnn, target, options)
    shared = timed_build(api, gnmt, target, options)
    base_size = client.images.get(base).attrs["Size"]
    print(f"build maskrcnn cold (no cache):          {cold:7.1f} s")
    print(f"build maskrcnn warm (layer cache):       {warm:7.1f} s   warm/cold = {warm / cold:.3f}")
    print(f"build gnmt on the shared runtime:        {shared:7.1f} s   gnmt/cold = {shared / cold:.3f}")
    runtime = client.images.get(f"mlperf-runtime:{maskrcnn.tag(matrix.version)}").attrs["Size"]
    print(f"base image:                              {base_size / MB:7.0f} MB")
    print(f"runtime over base (python, torch, jupyter): {(runtime - base_size) / MB:7.0f} MB")
    for entry in (maskrcnn, gnmt):
        reference = target.reference(entry)
        size = client.images.get(reference).attrs["Size"]
        report = check_image(client, reference)
        print(f"{entry.name}: {size / MB:.0f} MB = base + {(size - base_size) / MB:.0f} MB "
              f"(x{size / base_size:.1f}); over the runtime {(size - runtime) / MB:.0f} MB; "
              f"test_images {report.seconds:.1f} s, {len(report.failures)} failures")
        client.images.remove(reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
