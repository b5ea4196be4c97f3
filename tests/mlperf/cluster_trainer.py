"""A training stand-in for the launcher tests: joins the process group, all-reduces, reports, and fails
or waits on request (MLPERF_TEST_FAIL_RANK, MLPERF_TEST_SLEEP; MLPERF_ is what the launcher forwards)."""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.distributed as dist


def main() -> int:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    total = torch.tensor([rank + 1.0])
    dist.all_reduce(total)
    print(f"rank {rank} of {world}: sum {int(total.item())} on {os.environ.get('MLPERF_TEST_TAG', '?')}",
          flush=True)
    if str(rank) == os.environ.get("MLPERF_TEST_FAIL_RANK"):
        return 3
    if os.environ.get("MLPERF_TEST_SLEEP"):
        time.sleep(float(os.environ["MLPERF_TEST_SLEEP"]))
        print(f"rank {rank} of {world}: slept", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
