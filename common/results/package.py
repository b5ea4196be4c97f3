"""An MLCommons training submission package from the project's results, checked by `package_checker`.

`invoke results.package` writes `<out>/<org>/` in the layout MLCommons' tools read:
- `results/<system>/<benchmark>/result_0.txt ... result_<N-1>.txt`: exactly the runs MLPerf requires (N from
  `mlperf_logging`). Unfinished runs (`.partial`) are left out; of more than N finished runs, the N
  consecutive ones (by run_start) whose olympic score is the median of every such window are kept, as the
  training rules allow for M > N runs (a window with more than one failed run scores infinity).
- `systems/<system>.json`: the system's description, which must name the division its runs logged.
- `benchmarks/<benchmark>/implementations/<implementation>/`: the code that ran (pyproject, README, common/,
  the benchmark packages, images/), the benchmark's Dockerfile at its root, and per system a launch
  config (`config_<system>.sh`: the trainer options the logs record) and `run_and_time.sh`.

It then runs `python -m mlperf_logging.package_checker <out>/<org> training <ruleset>` and returns what it
printed, and lists what the checker does not judge: every `TO FILL IN` left in a description (the checker
only checks that the keys exist) and the seeds (the checker's seed rule, a seed logged by two runs on the
same line, is applied to open-division runs too; a series whose seeds count on from one another was run with
--seed, which a submission's runs must not be).

API: `package(results_root, out, ...) -> Package` (raises `PackageError`); `Package.report() -> str`.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.results import layout, rulesets, scoring, summary, systems
from common.results.logs import MLLOG

USAGE = "training"
TO_FILL_IN = "TO FILL IN"
OPEN_BECAUSE = "open_because"  # the trainers' metadata of submission_division
_CHECKER_PASSED = "PACKAGE CHECKER FOUND NO ERRORS"
# What a benchmark's implementation folder holds, relative to the repository root.
_CODE = ("pyproject.toml", "README.md", ".dockerignore", "common", "object_detection", "translation", "images")
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


@dataclass(frozen=True)
class Implementation:
    module: str  # run_and_time's module
    dockerfile: str  # relative to the repository root
    options: dict[str, str]  # logged key -> the trainer option that sets it


IMPLEMENTATIONS = {
    "maskrcnn": Implementation("object_detection.run_and_time", "object_detection/Dockerfile", {
        "global_batch_size": "--global-batch-size", "opt_base_learning_rate": "--base-lr",
        "opt_learning_rate_warmup_steps": "--warmup-steps", "opt_learning_rate_warmup_factor": "--warmup-factor",
        "opt_learning_rate_decay_steps": "--decay-steps", "min_image_size": "--min-size",
        "max_image_size": "--max-size"}),
    "gnmt": Implementation("translation.run_and_time", "translation/Dockerfile", {
        "global_batch_size": "--global-batch-size", "opt_base_learning_rate": "--lr",
        "opt_learning_rate_warmup_steps": "--warmup-steps", "opt_learning_rate_remain_steps": "--remain-steps",
        "opt_learning_rate_decay_interval": "--decay-interval", "max_sequence_length": "--max-length-train"}),
}


class PackageError(ValueError):
    """The results cannot make the package asked for."""


@dataclass(frozen=True)
class Packaged:
    system: str
    benchmark: str
    kept: tuple[str, ...]  # the project's result files, in the order they were renumbered
    left_out: tuple[str, ...]  # "<file>: why"
    seeds: tuple[int, ...]
    seed_flags: tuple[str, ...]


@dataclass(frozen=True)
class Package:
    root: Path
    ruleset: str
    folders: tuple[Packaged, ...]
    to_fill_in: tuple[str, ...]
    checker_output: str
    checker_passed: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def report(self) -> str:
        lines = [f"package: {self.root} (ruleset {self.ruleset})"]
        for folder in self.folders:
            lines.append(f"  {folder.system}/{folder.benchmark}: {len(folder.kept)} run(s) "
                         f"({', '.join(folder.kept)}), seeds {', '.join(map(str, folder.seeds))}")
            lines += [f"    left out: {why}" for why in folder.left_out]
            lines += [f"    seeds: {flag}" for flag in folder.seed_flags]
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"package_checker {self.ruleset} says:")
        lines += [f"  {line}" for line in self.checker_output.rstrip().splitlines()]
        if self.to_fill_in:
            lines.append(f"still TO FILL IN by the owner ({len(self.to_fill_in)}; the checker only checks that "
                         "the keys exist):")
            lines += [f"  {item}" for item in self.to_fill_in]
        return "\n".join(lines)

    @property
    def ok(self) -> bool:
        return self.checker_passed and not any(f.seed_flags for f in self.folders)


def _events(path: Path) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The first value and metadata of each key of a log."""
    found: dict[str, tuple[Any, dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if MLLOG in line:
            record = json.loads(line[line.index(MLLOG) + len(MLLOG):])
            found.setdefault(record["key"], (record.get("value"), record.get("metadata") or {}))
    return found


def _window(runs: list[summary.Run], keep: int, benchmark: str) -> list[summary.Run]:
    """The `keep` consecutive runs (by run_start) whose olympic score is the median of all windows."""
    ordered = sorted(runs, key=lambda run: run.log.run_start_ms or 0.0)
    if len(ordered) <= keep:
        return ordered
    scores = []
    for start in range(len(ordered) - keep + 1):
        window = ordered[start:start + keep]
        times = [run.minutes if run.outcome == summary.SCORED else None for run in window]
        minutes = scoring.olympic(times, max_dropped=rulesets.max_dropped(benchmark)).minutes
        scores.append((float("inf") if minutes is None else minutes, start))
    median = sorted(scores)[(len(scores) - 1) // 2][1]
    return ordered[median:median + keep]


def _seed_flags(runs: list[summary.Run]) -> list[str]:
    flags = []
    seen: dict[tuple[str, int, int], str] = {}
    for run in runs:
        for where in run.log.seeds:
            if where in seen:
                flags.append(f"{run.path.name} logs seed {where[2]} on {where[0]}:{where[1]}, as {seen[where]} "
                             "does: the seed checker refuses repeated seeds (rerun without --seed)")
            seen.setdefault(where, run.path.name)
        if not run.log.seeds:
            flags.append(f"{run.path.name} logs no seed (the seed checker requires one)")
    values = sorted(seed for run in runs for _, _, seed in run.log.seeds)
    if len(values) > 1 and values == list(range(values[0], values[0] + len(values))):
        flags.append(f"seeds {values[0]}..{values[-1]} count on from one another: a series run with --seed; a "
                     "submission's runs draw their seeds (run_and_time without --seed)")
    return flags


def _options(benchmark: str, events: dict[str, tuple[Any, dict[str, Any]]]) -> list[str]:
    """The trainer options that reproduce the logged settings: hyper-parameters, then what made the run open."""
    chosen: dict[str, list[str]] = {}
    for key, option in IMPLEMENTATIONS[benchmark].options.items():
        if key in events:
            value, metadata = events[key]
            chosen[option] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
            if key == "opt_learning_rate_warmup_factor" and "method" in metadata:
                chosen["--warmup-method"] = [str(metadata["method"])]
    division, metadata = events.get("submission_division", ("closed", {}))
    for phrase in metadata.get(OPEN_BECAUSE, []):
        words = str(phrase).split(" (", 1)[0].split()
        starts = [k for k, word in enumerate(words) if word.startswith("--")] + [len(words)]
        for a, b in itertools.pairwise(starts):
            chosen[words[a]] = words[a + 1:b]
    if benchmark == "maskrcnn" and division == "closed":
        chosen["--backbone"] = ["caffe2"]  # the reference's weights, which closed Mask R-CNN runs load
    return [part for option, values in chosen.items() for part in (option, *values)]


def _launch_files(folder: Path, benchmark: str, system: str, description: dict[str, Any],
                  events: dict[str, tuple[Any, dict[str, Any]]]) -> None:
    implementation = IMPLEMENTATIONS[benchmark]
    per_node = str(description.get("accelerators_per_node", "0"))
    workers = per_node if per_node.isdigit() and int(per_node) > 0 else "1"
    (folder / f"config_{system}.sh").write_text(
        f"# {system}: how the packaged {benchmark} runs were launched (written by `invoke results.package` from\n"
        f"# their MLPerf logs and systems/{system}.json). Source it, then run ./run_and_time.sh DATA_DIR.\n"
        f"export SYSTEM={shlex.quote(system)}\n"
        f"export NODES={shlex.quote(str(description.get('number_of_nodes', '1')))}\n"
        f"export WORKERS_PER_NODE={workers}\n"
        f"export TRAIN_ARGS={shlex.quote(shlex.join(_options(benchmark, events)))}\n", encoding="utf-8")
    script = folder / "run_and_time.sh"
    script.write_text(
        "#!/bin/bash\n"
        "# The MLPerf run-and-time of this implementation: `source config_<system>.sh; ./run_and_time.sh DATA_DIR`.\n"
        "# Each run's seed is drawn at random; logs go to results/$SYSTEM/. On a Backend.AI cluster, see README.md.\n"
        "set -euo pipefail\n"
        f"exec python -m {implementation.module} --data-dir \"$1\" --runs \"${{RUNS:-"
        f"{rulesets.required_runs(benchmark)}}}\" --nproc-per-node \"$WORKERS_PER_NODE\" --system \"$SYSTEM\" "
        "$TRAIN_ARGS\n", encoding="utf-8")
    script.chmod(0o755)


def _copy_code(repository: Path, folder: Path, benchmark: str) -> None:
    for name in _CODE:
        source = repository / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=_SKIPPED)
        elif source.is_file():
            shutil.copy2(source, folder / name)
    shutil.copy2(repository / IMPLEMENTATIONS[benchmark].dockerfile, folder / "Dockerfile")


def _placeholders(value: Any, path: str) -> list[str]:
    if isinstance(value, dict):
        return [p for key, inner in value.items() for p in _placeholders(inner, f"{path}.{key}" if path else key)]
    return [path] if isinstance(value, str) and TO_FILL_IN in value else []


def run_package_checker(root: Path, ruleset: str) -> tuple[str, bool]:
    """package_checker's output on the package, and whether it found no errors."""
    with tempfile.TemporaryDirectory(prefix="package-checker-") as scratch:
        proc = subprocess.run([sys.executable, "-m", "mlperf_logging.package_checker", str(root), USAGE, ruleset,
                               "--log_output", str(Path(scratch) / "package_checker.log")],
                              capture_output=True, text=True, check=False, cwd=scratch)
    output = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                       if "Detailed log output is also at" not in line)
    return output, proc.returncode == 0 and _CHECKER_PASSED in output


def _select(results_root: Path, benchmarks: list[str] | None, system_names: list[str] | None
            ) -> list[layout.BenchmarkFolder]:
    try:
        folders = layout.find(results_root)
    except layout.NoResultsError as error:
        raise PackageError(str(error)) from error
    chosen = [f for f in folders if (not benchmarks or f.benchmark in benchmarks)
              and (not system_names or f.system in system_names) and f.benchmark in IMPLEMENTATIONS]
    if not chosen:
        raise PackageError(f"{results_root}: no results of {', '.join(benchmarks or IMPLEMENTATIONS)} "
                           f"for {', '.join(system_names) if system_names else 'any system'}")
    return chosen


def _ruleset(folders: list[layout.BenchmarkFolder], requested: str | None) -> str:
    found = {f.benchmark: requested or rulesets.default_ruleset(f.benchmark) for f in folders}
    if len(set(found.values())) > 1:
        rounds = ", ".join(f"{b} {r}" for b, r in sorted(found.items()))
        raise PackageError(f"one package is one round, but these results are of several ({rounds}): package them "
                           "one at a time (--benchmark) into different --out folders")
    (ruleset,) = set(found.values())
    if ruleset is None:
        raise PackageError("no MLPerf round has these benchmarks")
    return ruleset


def _description(folder: layout.BenchmarkFolder, runs: list[summary.Run]) -> dict[str, Any]:
    path = folder.description_path
    if not path.exists():
        raise PackageError(f"{path}: no description of system {folder.system} (a run_and_time series writes one)")
    try:
        description = systems.read_description(path)
    except systems.SystemDescriptionError as error:
        raise PackageError(str(error)) from error
    logged = Counter(run.log.submission.get("division") for run in runs)
    if set(logged) != {description.get("division")}:
        raise PackageError(f"{folder.path}: its runs log division(s) {dict(logged)} but {path} says "
                           f"{description.get('division')!r}: one division per system")
    return description


def package(results_root: Path, out: Path, *, org: str | None = None, benchmarks: list[str] | None = None,
            system_names: list[str] | None = None, ruleset: str | None = None,
            implementation: str = "pytorch", repository: Path | None = None) -> Package:
    folders = _select(results_root, benchmarks, system_names)
    chosen_ruleset = _ruleset(folders, ruleset)
    scored = summary.summarize_folders(folders, ruleset=chosen_ruleset).results
    logged_orgs = {str(run.log.submission.get("org")) for result in scored for run in result.runs}
    if org is None and len(logged_orgs) != 1:
        raise PackageError(f"the runs log {len(logged_orgs)} submitters ({', '.join(sorted(logged_orgs))}): "
                           "give --org")
    org = org or logged_orgs.pop()
    root = out / org
    if root.exists():
        raise PackageError(f"{root} exists: remove it or choose another --out")
    repository = repository or Path(__file__).resolve().parents[2]
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{org}.", dir=out))  # beside its final name: renamed at the end
    try:
        packaged = [_package_folder(staging, result, implementation, repository) for result in scored]
        to_fill_in = [f"systems/{p.name}: {where}" for p in sorted((staging / "systems").glob("*.json"))
                      for where in _placeholders(json.loads(p.read_text(encoding="utf-8")), "")]
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    output, passed = run_package_checker(root, chosen_ruleset)
    others = sorted(logged_orgs - {org})
    notes = (f"the logs name submitter(s) {', '.join(others)}, the package {org}",) if others else ()
    return Package(root, chosen_ruleset, tuple(packaged), tuple(to_fill_in), output, passed, notes)


def _package_folder(staging: Path, result: summary.BenchmarkResult, implementation: str,
                    repository: Path) -> Packaged:
    folder = result.folder
    runs = [run for run in result.runs if run.outcome != summary.UNREADABLE]
    left_out = [f"{run.path.name}: {run.reason}" for run in result.runs if run.outcome == summary.UNREADABLE]
    left_out += [f"{p.name}: the run did not finish" for p in sorted(folder.path.glob("result_*.txt.partial"))]
    required = rulesets.required_runs(folder.benchmark) or len(runs)
    kept = _window(runs, required, folder.benchmark)
    left_out += [f"{run.path.name}: an extra run (the {required} consecutive runs closest to the median are kept)"
                 for run in runs if run not in kept]
    description = _description(folder, kept)
    target = staging / "results" / folder.system / folder.benchmark
    target.mkdir(parents=True)
    for index, run in enumerate(kept):
        shutil.copy2(run.path, target / f"result_{index}.txt")
    systems_dir = staging / "systems"
    systems_dir.mkdir(exist_ok=True)
    (systems_dir / f"{folder.system}.json").write_text(json.dumps(description, indent=4) + "\n", encoding="utf-8")
    code = staging / "benchmarks" / folder.benchmark / "implementations" / implementation
    if not code.exists():
        code.mkdir(parents=True)
        _copy_code(repository, code, folder.benchmark)
    _launch_files(code, folder.benchmark, folder.system, description, _events(kept[0].path))
    return Packaged(folder.system, folder.benchmark, tuple(run.path.name for run in kept), tuple(left_out),
                    tuple(seed for run in kept for _, _, seed in run.log.seeds), tuple(_seed_flags(kept)))
