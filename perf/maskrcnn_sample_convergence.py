"""How far the Mask R-CNN sample run is from its target: BBOX and SEGM after every epoch, per seed and world size.

    python perf/maskrcnn_sample_convergence.py [--data-dir D] [--seeds 1 2 3] [--workers 1 2] [--epochs 4]

Each run is the sample run (`object_detection.run_and_time.SAMPLE_TRAINING_ARGS`: the trainer `invoke
maskrcnn.run --sample` starts) with the quality target out of reach, so it trains all `--epochs` and logs every
epoch's accuracy; two workers go through torchrun with gloo, one thread each. It prints one line per run: the
accuracy after each epoch and the first epoch on target (BBOX >= 0.377 and SEGM >= 0.339), which is where the
real run stops. A figure, not a test: tests/maskrcnn/test_sample_run.py asserts seed 1 on one worker.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def _trainer(argv: list[str]) -> int:
    """The trainer with the target out of reach (run as this script's child, in every worker)."""
    from object_detection.maskrcnn import evaluation, train  # noqa: PLC0415

    evaluation.BBOX_TARGET = evaluation.SEGM_TARGET = 2.0
    return train.main(argv)


def _run(data_dir: Path, seed: int, workers: int, epochs: int, log: Path) -> list[dict[str, float]]:
    from object_detection.run_and_time import SAMPLE_TRAINING_ARGS  # noqa: PLC0415

    args = [*SAMPLE_TRAINING_ARGS, "--max-epochs", str(epochs), "--eval-processes", "0", "--data-dir", str(data_dir),
            "--seed", str(seed), "--log-file", str(log)]
    launcher = ([] if workers == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={workers}"])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run([sys.executable, *launcher, __file__, "--as-trainer", *args], cwd=REPO_ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    lines = [line.split(":::MLLOG ", 1)[1] for line in log.read_text().splitlines() if ":::MLLOG " in line]
    return [record["value"] for record in map(json.loads, lines) if record["key"] == "eval_accuracy"]


def main() -> int:
    if sys.argv[1:2] == ["--as-trainer"]:
        return _trainer(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="the sample (default: built in a temporary folder)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maskrcnn-convergence-") as scratch:
        data_dir = args.data_dir
        if data_dir is None:
            from object_detection.sample import build_sample  # noqa: PLC0415

            data_dir = Path(scratch) / "sample"
            build_sample(data_dir)
        for workers in args.workers:
            for seed in args.seeds:
                started = time.monotonic()
                accuracy = _run(data_dir, seed, workers, args.epochs, Path(scratch) / f"w{workers}-s{seed}.txt")
                on_target = next((k + 1 for k, a in enumerate(accuracy) if a["BBOX"] >= 0.377 and a["SEGM"] >= 0.339),
                                 None)
                epochs = ", ".join(f"{a['BBOX']:.3f}/{a['SEGM']:.3f}" for a in accuracy)
                print(f"workers {workers} seed {seed}: BBOX/SEGM by epoch {epochs}; on target at epoch {on_target}; "
                      f"{time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
