"""The MLPerf run-and-time driver shared by every benchmark's `run_and_time.py`.

It does what the reference `run_and_time.sh` scripts meant to do, and what they got wrong: it
prints `STARTING TIMING RUN AT <date>` and `ENDING TIMING RUN AT <date>`, ends each run with
`RESULT,<BENCHMARK>,<seed>,<seconds>,<user>,<start>`, and exits with the *training's* exit code.
It never imports torch: the training runs in a child process (the score at the end of a series
needs `mlperf_logging`, as the compliance verdict does).

The training module's contract: `python -m <module> <args> --seed N --log-file PATH` writes its
MLPerf log (see `common.mlperf.mllog`) to PATH and exits 0 when it reached the quality target. With
`--nproc-per-node K > 1` it is started through `torchrun --standalone` (K workers on this node).

API:
- `Benchmark(name, result_name, train_module, ruleset)`: `name` is the MLPerf benchmark name
  (results folder, `submission_benchmark`), `result_name` the RESULT line's tag; `division`, when
  given, tells the division the trainer options make (torch-free), so that a system keeps one:
  the automatic name of an open series ends in `-open`, and a series whose division the system's
  runs or description do not have goes under `<system>-<division>` (`common.results.systems.home_for`).
- `build_parser(benchmark, description) -> argparse.ArgumentParser` with the options every
  benchmark shares: --seed, --runs, --nproc-per-node, --results-dir, --system, --no-compliance,
  --probe (--probe-evaluations, --probe-minutes). The benchmark adds its own and turns them into
  training arguments.
- `main(benchmark, args, train_args) -> int`: runs `args.runs` seeded runs one after another (seed,
  seed+1, ... when --seed fixes them; else each run's seed is drawn from the system's entropy, as
  MLPerf's rules want for a submission), each log in the results layout
  (`common.mlperf.results`), then the compliance checker's verdict (`common.mlperf.compliance`). Returns the
  first non-zero training exit code, else 0. An interrupt stops the series. At its end it writes
  `systems/<system>.json` beside the results folder (`common.results.systems`) and prints the
  folder's `results.summary` line (`common.results.summary`). With `--probe` each run is stopped once
  its log can be projected (`common.mlperf.probe`), kept as `probe_<i>.txt` (never scored), and the
  projection is printed instead of a verdict, a RESULT line and the score (`common.results.projection`).
- `run_training(command, probe=None) -> TimedRun`: one timed child, SIGINT/SIGTERM forwarded to it
  (the child runs in its own session, so a terminal's Ctrl-C reaches it exactly once), watched by
  `probe` when given.
- `training_command(benchmark, train_args, *, seed, log_file, nproc_per_node) -> list[str]`: in a
  Backend.AI cluster session (or with `--nproc-per-node auto`) through `common.mlperf.launcher`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

from common.mlperf import compliance, launcher, results
from common.mlperf.probe import DEFAULT_EVALUATIONS, Probe, ProbeLimit
from common.results import layout, projection, summary, systems
from common.results.logs import read_log

_FORWARDED = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Benchmark:
    name: str
    result_name: str
    train_module: str
    ruleset: str
    # The training's option for submission_platform; the system's name goes there (as in MLPerf
    # submissions) unless it is the default "local".
    platform_option: str | None = None
    # The division a run with these training arguments logs (raises ValueError for options that make no run).
    division: Callable[[list[str]], str] | None = None


@dataclass(frozen=True)
class TimedRun:
    exit_code: int
    start: datetime
    seconds: int
    interrupted_by: int | None


def build_parser(benchmark: Benchmark, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{benchmark.train_module.split('.')[0]}.run_and_time",
                                     description=description)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the first run, the next runs counting on (default: a random seed per run; "
                             "a submission's seeds must be random)")
    parser.add_argument("--runs", type=int, default=1, help="seeded runs one after another (MLPerf: 5)")
    parser.add_argument("--nproc-per-node", type=_workers, default="1",
                        help="workers per node (torchrun); auto: one per visible GPU, else one")
    parser.add_argument("--results-dir", type=Path, default=Path("results"),
                        help="root of the MLPerf results layout (default: ./results)")
    parser.add_argument("--system", default=os.environ.get("MLPERF_SYSTEM", "local"),
                        help="system name in the results layout (env MLPERF_SYSTEM); auto: from the nodes "
                             "and GPUs, e.g. bai-2x8xH100")
    parser.add_argument("--no-compliance", action="store_true",
                        help="skip the compliance verdict after each run (the score at the end checks every log)")
    parser.add_argument("--probe", action="store_true",
                        help="stop each run once its log can be projected, keep it as probe_<i>.txt (never scored) "
                             "and print the projected time to train")
    parser.add_argument("--probe-evaluations", type=_at_least_one, default=DEFAULT_EVALUATIONS,
                        help=f"a probe stops after this many evaluations (default {DEFAULT_EVALUATIONS})")
    parser.add_argument("--probe-minutes", type=float, default=None,
                        help="a probe stops this many minutes after run_start at the latest")
    return parser


def _at_least_one(value: str) -> int:
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {value!r}")


def training_command(
    benchmark: Benchmark, train_args: list[str], *, seed: int, log_file: Path, nproc_per_node: str | int,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The training's command: through the launcher in a Backend.AI cluster session or for `auto`
    workers, through torchrun --standalone for several workers here, else the module itself."""
    environ = os.environ if environ is None else environ
    tail = ["-m", benchmark.train_module, *train_args, "--seed", str(seed), "--log-file", str(log_file)]
    if str(nproc_per_node) == "auto" or int(environ.get("BACKENDAI_CLUSTER_SIZE", "1") or 1) > 1:
        return [sys.executable, "-m", "common.mlperf.launcher", f"--nproc-per-node={nproc_per_node}", "--", *tail]
    if int(nproc_per_node) > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={nproc_per_node}", *tail]
    return [sys.executable, *tail]


def _workers(value: str) -> str:
    if value == "auto" or (value.isdigit() and int(value) >= 1):
        return value
    raise argparse.ArgumentTypeError(f"expected a number of workers (at least 1) or auto, not {value!r}")


def run_training(command: list[str], probe: Probe | None = None) -> TimedRun:
    """The training in its own session, Ctrl-C and SIGTERM forwarded to it: the handler is in place before
    the training starts, so a signal that arrives while it starts reaches it too."""
    start = datetime.now()
    started = time.monotonic()
    proc: subprocess.Popen[bytes] | None = None
    received: list[int] = []
    early: list[int] = []  # arrived before the training's process was known

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if proc is None:
            early.append(signum)
        else:
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        proc = subprocess.Popen(command, start_new_session=True)
        for signum in early:
            proc.send_signal(signum)
        if probe is not None:
            probe.watch(proc)
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if probe is not None:
            probe.finish()
    # A child killed by a signal reports -N; a shell reports 128+N.
    exit_code = 128 - code if code < 0 else code
    return TimedRun(exit_code, start, round(time.monotonic() - started), received[0] if received else None)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %I:%M:%S %p")


def main(benchmark: Benchmark, args: argparse.Namespace, train_args: list[str]) -> int:
    if args.runs < 1:
        print("run_and_time: --runs must be at least 1", file=sys.stderr)
        return 2
    try:
        args.system = _system_of_one_division(benchmark, args, train_args)
    except (ValueError, systems.DivisionConflictError) as error:
        print(f"run_and_time: {error}", file=sys.stderr)
        return 2
    # The launcher says here how the nodes reached each other (for the system description).
    launch_facts = Path(args.results_dir) / f".launch-{args.system}.json"
    os.environ[launcher.FACTS_ENV] = str(launch_facts.resolve())
    first_failure = 0
    logs: list[Path] = []
    for offset in range(args.runs):
        seed = args.seed + offset if args.seed is not None else random.SystemRandom().randint(0, 2**31 - 1)
        final = results.next_result_path(args.results_dir, args.system, benchmark.name,
                                         results.PROBE if args.probe else results.RESULT)
        partial = final.with_name(final.name + ".partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        named = benchmark.platform_option and args.system != "local"
        platform = [benchmark.platform_option, args.system] if named else []
        command = training_command(benchmark, [*train_args, *platform], seed=seed, log_file=partial,
                                   nproc_per_node=args.nproc_per_node)
        probe = Probe(partial, ProbeLimit(args.probe_evaluations, args.probe_minutes)) if args.probe else None
        print(f"STARTING TIMING RUN AT {_stamp(datetime.now())}", flush=True)
        run = run_training(command, probe)
        print(f"ENDING TIMING RUN AT {_stamp(datetime.now())}", flush=True)
        if partial.exists():
            partial.replace(final)
            logs.append(final)
            print(f"MLPerf log: {final}", flush=True)
            if not args.no_compliance and probe is None:
                print(_verdict_line(final, benchmark.ruleset), flush=True)
        else:
            print(f"run_and_time: the training wrote no MLPerf log ({partial})", file=sys.stderr)
        exit_code = run.exit_code
        if probe is not None:
            exit_code = 0 if probe.stopped and run.interrupted_by is None else exit_code
            ended = f"stopped it after {probe.stopped}" if probe.stopped else "the run ended before the probe's limit"
            print(f"probe: {ended}; a probe's log is probe_<i>.txt, never scored", flush=True)
        else:
            print(f"RESULT,{benchmark.result_name},{seed},{run.seconds},{_user()},{_stamp(run.start)}", flush=True)
        first_failure = first_failure or exit_code
        if run.interrupted_by is not None:
            print(f"run_and_time: interrupted ({signal.Signals(run.interrupted_by).name}); "
                  f"stopping after run {offset + 1} of {args.runs}", file=sys.stderr)
            break
    if logs:
        print(_described(args.results_dir, args.system, logs[-1], _read_facts(launch_facts)), flush=True)
    folder = layout.project_folder(args.results_dir, args.system, benchmark.name)
    if args.probe:
        print(projection.render_text([projection.project_files(folder, logs)]), flush=True)
    else:
        print(summary.headline(summary.summarize_folders([folder], ruleset=benchmark.ruleset).results[0]),
              flush=True)
    return first_failure


def _system_of_one_division(benchmark: Benchmark, args: argparse.Namespace, train_args: list[str]) -> str:
    """The system the series goes under: `auto` resolved (ending in -open for an open series), then one that holds
    no other division's runs (common.results.systems.home_for, which says when it is not the name asked for)."""
    division = benchmark.division(train_args) if benchmark.division else None
    system = args.system
    if system == "auto":
        system = launcher.system_name(os.environ, launcher.accelerator_names())
        system += "-open" if division == "open" else ""
    if division is None:
        return system
    home = systems.home_for(args.results_dir, system, division)
    if home.message:
        print(f"run_and_time: {home.message}", file=sys.stderr, flush=True)
    return home.system


def _read_facts(path: Path) -> dict | None:
    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    return facts if isinstance(facts, dict) else None


def _described(results_dir: Path, system: str, log_path: Path, launch: dict | None = None) -> str:
    try:
        written = systems.describe_local_run(layout.submission_root(results_dir), system, read_log(log_path),
                                             launch)
    except systems.SystemDescriptionError as error:
        return f"run_and_time: {error}"
    if written.changes:
        return (f"System description: {written.path}; it described another machine before "
                f"({'; '.join(written.changes)}): give each machine its own --system")
    return f"System description: {written.path}"


def _verdict_line(log_path: Path, ruleset: str) -> str:
    try:
        return compliance.check_log(log_path, ruleset).summary()
    except compliance.ComplianceCheckerError as error:
        return f"compliance ({ruleset}): no verdict: {error}"
