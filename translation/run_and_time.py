"""GNMT run and time: `python -m translation.run_and_time --seed N --data-dir D [--nproc-per-node K] [--sample]`.

Prints STARTING/ENDING TIMING RUN, ends each run with `RESULT,RNN_TRANSLATOR,<seed>,<seconds>,<user>,<start>`,
exits with the training's exit code (1 when the data does not verify), keeps each MLPerf log as
`results/<system>/gnmt/result_<i>.txt` and prints the 0.7.0 compliance checker's verdict. Options it
does not know go to the trainer (`python -m translation.gnmt.main --help`). No torch here: the training
runs in a child process.

`--sample` trains on the small sample corpus (built into --data-dir when absent) with a small model
that reaches the BLEU target there in about a minute on a CPU: a check of the whole pipeline, not
a benchmark result.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import extras
from common.mlperf import run_and_time
from translation import verify_dataset
from translation.layout import Wmt16Layout
from translation.sample import build_sample

GNMT = run_and_time.Benchmark(
    name="gnmt", result_name="RNN_TRANSLATOR", train_module="translation.gnmt.main", ruleset="0.7.0",
    platform_option="--submission-platform",
)
# What the training imports (the image has GNMT's requirements only, not Mask R-CNN's).
TRAINING_MODULES = ("torch", "mlperf_logging", "sacrebleu", "sacremoses", "subword_nmt", "numpy")
# A model small enough for the sample's ~120-token vocabulary and 3k pairs.
SAMPLE_TRAINING_ARGS = [
    "--hidden-size", "64", "--batch-size", "32", "--lr", "5e-3", "--warmup-steps", "10", "--epochs", "12",
]
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def clear_page_cache() -> bool:
    """Drop the page cache as MLPerf asks before a run; False where the system does not let us."""
    try:
        with DROP_CACHES.open("w") as control:
            control.write("3\n")
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = run_and_time.build_parser(GNMT, __doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds wmt16_de_en/ (translation.layout)")
    parser.add_argument("--sample", action="store_true", help="train the small model on the sample corpus")
    parser.add_argument("--clear-cache", action="store_true", help="drop the page cache before the runs (needs root)")
    args, train_args = parser.parse_known_args(argv)
    try:
        extras.require("train", "the gnmt training", TRAINING_MODULES)
    except extras.MissingExtraError as exc:
        print(f"run_and_time: {exc}", file=sys.stderr)
        return 1
    if args.sample:
        layout = Wmt16Layout(args.data_dir)
        if any(not p.is_file() for p in layout.required()):
            build_sample(args.data_dir)
        train_args = [*SAMPLE_TRAINING_ARGS, *train_args]
    # Checksums (or, for the sample, the layout) before the clock: a bad dataset costs no timed run.
    if verify_dataset.main(["--data-dir", str(args.data_dir), *(["--sample"] if args.sample else [])]) != 0:
        print(f"run_and_time: the data in {args.data_dir} did not verify; prepare it with "
              "`invoke gnmt.prepare` (or pass --sample)", file=sys.stderr)
        return 1
    if args.clear_cache and clear_page_cache():
        train_args.append("--cache-cleared")
    return run_and_time.main(GNMT, args, ["--data-dir", str(args.data_dir), *train_args])


if __name__ == "__main__":
    sys.exit(main())
