"""The GNMT trainer's options, what they make of a run, and its division; no torch, so run_and_time can ask.

- `build_parser()`, `parse_args(argv)`: the trainer's command line (exit 2 on options that make no run).
- Step counts as the reference reads them (`literal_eval` in its train.py): `200` is a step, `0.666` or `1.0`
  a fraction of the run's steps, so `--remain-steps 1.0` means no decay.
- `batch_split(global_batch, workers, batch_size)`: sentences per worker and step, and the gradient
  accumulation steps that make the global batch (the reference's `--train-global-batch-size 1024`).
- `departures(args)`: each setting the rules fix that is not the reference's; the run is closed only
  without any (`division_of(train_args)` for run_and_time, which keeps one division per system).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REFERENCE_GLOBAL_BATCH = 1024  # rnn_translator/pytorch/run.sh: --train-global-batch-size 1024
# The metadata key of submission_division that lists the settings making a run open (results.package reads it).
OPEN_BECAUSE = "open_because"
MAX_WORKER_BATCH = 128  # the reference's --train-batch-size: sentences per worker and forward pass
# What the closed rules fix (training_rules v0.7: every hyper-parameter not in the tunable table is the
# reference's; the tunable ones are the LR, warmup, remain steps, decay interval and max sequence length).
# The global batch is tunable there too; a run logs closed only at the reference's, whose schedule converged.
REFERENCE_SETTINGS = {
    "hidden_size": 1024, "num_layers": 4, "dropout": 0.2, "global_batch_size": REFERENCE_GLOBAL_BATCH,
    "label_smoothing": 0.1, "clip_grad": 5.0, "num_buckets": 5, "target_bleu": 24.0, "beam_size": 5,
    "max_length_test": 150, "len_norm_factor": 0.6, "len_norm_const": 5.0, "cov_penalty_factor": 0.1,
}


class OptionsError(ValueError):
    """The options make no run (or not one of the division asked for)."""


def steps_or_fraction(text: str) -> int | float:
    """`200` is a step count, `0.666` a fraction of the run's steps (at most 1.0), as the reference reads them."""
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a step count (200) or a fraction of the steps (0.666), "
                                             f"not {text!r}") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{text}: a fraction of the run's steps is between 0.0 and 1.0 "
                                             f"(write {int(value)} for a step count)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: a step count is not negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m translation.gnmt.main",
                                description="Train GNMT to a BLEU target with MLPerf logs.")
    run = p.add_argument_group("run")
    run.add_argument("--data-dir", type=Path, required=True, help="holds wmt16_de_en/ (translation.layout)")
    run.add_argument("--seed", type=int, required=True, help="master seed; every other seed derives from it")
    run.add_argument("--log-file", type=Path, default=None, help="MLPerf log (default: stdout only)")
    run.add_argument("--target-bleu", type=float, default=24.0)
    run.add_argument("--epochs", type=int, default=8, help="most epochs before giving up")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    run.add_argument("--amp", action="store_true", help="bf16 autocast on GPU")
    run.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    run.add_argument("--loader-workers", type=int, default=0, help="DataLoader worker processes")
    sub = p.add_argument_group("submission")
    sub.add_argument("--submission-org", default="Backend.AI")
    sub.add_argument("--submission-platform", default=None, help="default: <workers>x<device type>")
    sub.add_argument("--submission-division", choices=["closed", "open"], default=None,
                     help="default: closed when every setting the rules fix is the reference's, else open; "
                          "closed with other settings exits 2 naming them")
    sub.add_argument("--submission-status", choices=["onprem", "cloud", "preview", "research"], default="onprem")
    model = p.add_argument_group("model (the reference: hidden 1024, 4 layers, dropout 0.2)")
    model.add_argument("--hidden-size", type=int, default=1024)
    model.add_argument("--num-layers", type=int, default=4)
    model.add_argument("--dropout", type=float, default=0.2)
    opt = p.add_argument_group("solver (rule-tunable: lr, warmup, remain, interval, max length)")
    opt.add_argument("--global-batch-size", type=int, default=REFERENCE_GLOBAL_BATCH,
                     help=f"sentences per optimizer step over all workers (default {REFERENCE_GLOBAL_BATCH}, the "
                          "reference's), reached by gradient accumulation where the workers' batches are smaller")
    opt.add_argument("--batch-size", type=int, default=None,
                     help=f"sentences per worker and forward pass (default: the largest that divides the worker's "
                          f"share of the global batch, up to {MAX_WORKER_BATCH})")
    opt.add_argument("--lr", type=float, default=1e-3)
    steps = "a step count (200) or a fraction of the run's steps (0.666; 1.0: the last step)"
    opt.add_argument("--warmup-steps", type=steps_or_fraction, default=200, help=steps)
    opt.add_argument("--remain-steps", type=steps_or_fraction, default=0.666,
                     help=f"the step the decay starts at: {steps}, so 1.0 means no decay")
    opt.add_argument("--decay-interval", type=steps_or_fraction, default=None,
                     help=f"{steps} (default: (total - remain) // 4)")
    opt.add_argument("--label-smoothing", type=float, default=0.1)
    opt.add_argument("--clip-grad", type=float, default=5.0)
    opt.add_argument("--max-length-train", type=int, default=50, help="pairs longer (BOS/EOS included) dropped")
    opt.add_argument("--num-buckets", type=int, default=5)
    infer = p.add_argument_group("evaluation")
    infer.add_argument("--beam-size", type=int, default=5)
    infer.add_argument("--max-length-test", type=int, default=150)
    infer.add_argument("--len-norm-factor", type=float, default=0.6)
    infer.add_argument("--len-norm-const", type=float, default=5.0)
    infer.add_argument("--cov-penalty-factor", type=float, default=0.1)
    infer.add_argument("--test-batch-size", type=int, default=128)
    return p


def batch_split(global_batch: int, workers: int, batch_size: int | None) -> tuple[int, int]:
    """(sentences per worker and forward pass, accumulation steps) that make `global_batch`."""
    if global_batch < 1 or global_batch % workers:
        raise OptionsError(f"--global-batch-size {global_batch} does not split over {workers} worker(s)")
    share = global_batch // workers
    if batch_size is None:
        batch_size = max(d for d in range(1, min(share, MAX_WORKER_BATCH) + 1) if share % d == 0)
    if batch_size < 1 or share % batch_size:
        raise OptionsError(f"--batch-size {batch_size} does not divide a worker's {share} sentences of "
                           f"--global-batch-size {global_batch} over {workers} worker(s)")
    return batch_size, share // batch_size


def departures(args: argparse.Namespace) -> tuple[str, ...]:
    """Each setting the rules fix that is not the reference's, as `--option value (the reference's: x)`."""
    return tuple(f"--{name.replace('_', '-')} {getattr(args, name):g} (the reference's: {reference:g})"
                 for name, reference in REFERENCE_SETTINGS.items() if getattr(args, name) != reference)


def division(args: argparse.Namespace) -> str:
    """closed or open; raises OptionsError for --submission-division closed with a setting not the reference's."""
    open_because = departures(args)
    if args.submission_division == "closed" and open_because:
        raise OptionsError(f"--submission-division closed, but the rules fix what this run changes: "
                           f"{'; '.join(open_because)}")
    return args.submission_division or ("open" if open_because else "closed")


def division_line(args: argparse.Namespace) -> str:
    """The division in one line, with the settings that made it open."""
    chosen, open_because = division(args), departures(args)
    if chosen == "closed":
        return "division closed: the reference's model, batch and evaluation"
    return f"division open: {'; '.join(open_because)}" if open_because else "division open (--submission-division open)"


def division_of(train_args: list[str]) -> str:
    """The division a run with these trainer options logs (run_and_time keeps one division per system)."""
    args, _ = build_parser().parse_known_args(["--data-dir", "-", "--seed", "0", *train_args])
    return division(args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("epochs", "hidden_size", "beam_size", "test_batch_size", "max_length_test"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.num_layers < 2:
        parser.error(f"--num-layers must be at least 2 (GNMT's bidirectional layer 1 + layer 2), got {args.num_layers}")
    if args.max_length_train < 3:
        parser.error(f"--max-length-train counts BOS and EOS, so it must be at least 3, got {args.max_length_train}")
    try:
        args.batch_size, args.accumulation = batch_split(args.global_batch_size, int(os.environ.get("WORLD_SIZE", "1")),
                                                         args.batch_size)
        division(args)
    except OptionsError as error:
        parser.error(str(error))
    return args
