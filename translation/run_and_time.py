"""GNMT run and time: `python -m translation.run_and_time --seed N --data-dir D [--nproc-per-node K] [--sample]`.

Prints STARTING/ENDING TIMING RUN, ends each run with `RESULT,RNN_TRANSLATOR,<seed>,<seconds>,<user>,<start>`,
exits with the training's exit code (1 when the data does not verify), keeps each MLPerf log as
`results/<system>/gnmt/result_<i>.txt` and prints the 0.7.0 compliance checker's verdict. Options it
does not know go to the trainer (`python -m translation.gnmt.main --help`). No torch here: the training
runs in a child process.

`--allow-dataset-drift` (or MLPERF_ALLOW_DATASET_DRIFT=1) trains on data whose only fault is that
its bytes are not the reference's (translation.verify_dataset says which step differs); such runs
are logged as open division.

`--sample` trains on the small sample corpus (built into --data-dir when absent) with a small model
that reaches the BLEU target there in about a minute on a CPU: a check of the whole pipeline, not
a benchmark result.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from common import extras
from common.datasets.manifest import ManifestError
from common.datasets.mounts import writable
from common.mlperf import run_and_time
from translation import verify_dataset
from translation.gnmt.options import division_of
from translation.layout import Wmt16Layout

GNMT = run_and_time.Benchmark(
    name="gnmt", result_name="RNN_TRANSLATOR", train_module="translation.gnmt.main", ruleset="0.7.0",
    platform_option="--submission-platform", division=division_of,
)
# What the training imports (the image has GNMT's requirements only, not Mask R-CNN's).
TRAINING_MODULES = ("torch", "mlperf_logging", "sacrebleu", "sacremoses", "subword_nmt", "numpy")
# A model small enough for the sample's ~120-token vocabulary and 3k pairs (open division: not the reference's
# model or batch). Hidden 96 with 8 epochs (the decay starting after 5.3) reached BLEU 24 in 6-7 epochs for
# seeds 1-4; hidden 64 with 12 needed 7-8 epochs.
SAMPLE_TRAINING_ARGS = [
    "--hidden-size", "96", "--global-batch-size", "32", "--lr", "5e-3", "--warmup-steps", "10", "--epochs", "8",
]
DRIFT_ENV = "MLPERF_ALLOW_DATASET_DRIFT"


def main(argv: list[str] | None = None) -> int:
    parser = run_and_time.build_parser(GNMT, __doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds wmt16_de_en/ (translation.layout)")
    parser.add_argument("--sample", action="store_true", help="train the small model on the sample corpus")
    parser.add_argument(verify_dataset.DRIFT_OPTION, action="store_true", default=os.environ.get(DRIFT_ENV) == "1",
                        help=f"train on data that differs from the reference's md5s only, as open division "
                             f"(default: ${DRIFT_ENV}=1)")
    parser.add_argument("--manifest", type=Path, default=verify_dataset.MANIFEST,
                        help="the dataset manifest whose digests the data must match")
    args, train_args = parser.parse_known_args(argv)
    try:
        extras.require("train", "the gnmt training", TRAINING_MODULES)
    except extras.MissingExtraError as exc:
        print(f"run_and_time: {exc}", file=sys.stderr)
        return 1
    if args.sample:
        from translation.sample import build_sample  # noqa: PLC0415 - the preprocessing needs the train extra

        layout = Wmt16Layout(args.data_dir)
        # built where it is missing, but never into a dataset someone else prepared and mounted read-only
        if any(not p.is_file() for p in layout.required()) and writable(args.data_dir):
            build_sample(args.data_dir)
        train_args = [*SAMPLE_TRAINING_ARGS, *train_args]
    # Checksums and step records (or, for the sample, the records and the layout) before the clock: a bad
    # dataset costs no timed run.
    try:
        verdict = verify_dataset.check(args.data_dir, sample=args.sample, manifest_path=args.manifest)
    except ManifestError as exc:
        print(f"run_and_time: {exc}", file=sys.stderr)
        return 1
    if verdict.report(args.allow_dataset_drift) != 0:
        print(f"run_and_time: the data in {args.data_dir} did not verify; prepare it with "
              "`invoke gnmt.prepare` (or pass --sample)", file=sys.stderr)
        return 1
    if verdict.drift:
        print("run_and_time: the data differs from the reference's; the runs are logged as open division",
              file=sys.stderr)
        train_args += ["--submission-division", "open"]
    return run_and_time.main(GNMT, args, ["--data-dir", str(args.data_dir), *train_args])


if __name__ == "__main__":
    sys.exit(main())
