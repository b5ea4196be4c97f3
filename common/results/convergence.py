"""How far a run at a given global batch must train to converge, with the spread of that figure.

The figures are mlperf-logging's reference convergence points (RCPs): for each benchmark and round,
`rcp_checker/training_<round>/rcps_<benchmark>.json` in the installed package, runs of the reference
at several global batch sizes with the epochs (or samples: whatever the benchmark's `eval_accuracy`
counts) each needed. They are read as data, and treated as `rcp_checker` treats them: a record's mean
is the olympic mean of its runs (without the fastest and the slowest; four of each for unet3d), its
spread the population standard deviation of all of them; a batch between two records gets the mean and
spread interpolated linearly between the nearest smaller and larger one; a batch below the smallest
record is held to the smallest (a smaller batch converges no faster); above the largest there is no
reference (rcp_checker asks the submitter for a new RCP). rcp_checker's RCP file of a round is used when
the round has one for the benchmark, else the newest that has.

GNMT ended (v0.7) before RCPs began (v1.0): its points are epochs read from published v0.7 logs
(`convergence.yaml` next to this module, with their sources), used the same way.

API:
- `reference(benchmark, global_batch, ruleset=None) -> Reference` (raises `NoReferenceError`)
- `from_runs(values, label) -> Reference`: the same statistics over a folder's own converged runs
- `Reference`: mean, stdev, runs, source (in words)
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

PUBLISHED_POINTS = Path(__file__).with_name("convergence.yaml")
_USAGE = "training"
# rcp_checker leaves this many of the fastest and of the slowest runs out of a record's mean.
_REJECTED = {"unet3d": 4}


class NoReferenceError(LookupError):
    """No reference convergence for this benchmark at this batch."""


@dataclass(frozen=True)
class Reference:
    mean: float
    stdev: float
    runs: int
    source: str


@dataclass(frozen=True)
class _Record:
    batch: int
    values: tuple[float, ...]
    origin: str

    def reference(self, benchmark: str, source: str) -> Reference:
        return Reference(_olympic(benchmark, self.values), statistics.pstdev(self.values), len(self.values), source)


def _olympic(benchmark: str, values: Sequence[float]) -> float:
    ordered = sorted(values)
    rejected = _REJECTED.get(benchmark, 1)
    kept = ordered[rejected:len(ordered) - rejected] or ordered  # too few to leave any out: all of them
    return sum(kept) / len(kept)


def _version(ruleset: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ruleset.split("."))


@cache
def _rcp_folder() -> Path | None:
    spec = importlib.util.find_spec("mlperf_logging")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "rcp_checker"


def rcp_rulesets(benchmark: str) -> list[str]:
    """The rounds whose RCP files have `benchmark`, oldest first."""
    folder = _rcp_folder()
    if folder is None or not folder.is_dir():
        return []
    found = [p.parent.name.removeprefix(f"{_USAGE}_") for p in folder.glob(f"{_USAGE}_*/rcps_{benchmark}.json")]
    return sorted(found, key=_version)


@cache
def _rcp_records(benchmark: str, ruleset: str) -> tuple[_Record, ...]:
    path = _rcp_folder() / f"{_USAGE}_{ruleset}" / f"rcps_{benchmark}.json"  # type: ignore[operator]
    records = []
    for name, record in json.loads(path.read_text(encoding="utf-8")).items():
        values = record.get("Epochs to converge", record.get("samples to converge"))
        if isinstance(values, list) and values:  # the file names the benchmark (its records may say "sd")
            records.append(_Record(int(record["BS"]), tuple(float(v) for v in values), name))
    return tuple(sorted(records, key=lambda r: r.batch))


@cache
def _published_records(benchmark: str) -> tuple[tuple[_Record, ...], str]:
    document = yaml.safe_load(PUBLISHED_POINTS.read_text(encoding="utf-8"))
    points = [p for p in document["points"] if p["benchmark"] == benchmark]
    records = tuple(sorted((_Record(int(p["global_batch_size"]), tuple(float(v) for v in p["epochs"]),
                                    f"{p['round']} logs at batch {p['global_batch_size']}") for p in points),
                           key=lambda r: r.batch))
    return records, (points[0]["round"] if points else "")


def _interpolated(benchmark: str, batch: int, low: _Record, high: _Record, origin: str) -> Reference:
    share = (batch - low.batch) / (high.batch - low.batch)
    below, above = low.reference(benchmark, ""), high.reference(benchmark, "")
    return Reference(below.mean + share * (above.mean - below.mean), below.stdev + share * (above.stdev - below.stdev),
                     below.runs + above.runs,
                     f"{origin}, interpolated between batch {low.batch} and {high.batch} as rcp_checker does")


def _at_batch(benchmark: str, batch: int, records: Sequence[_Record], origin: str) -> Reference:
    exact = next((r for r in records if r.batch == batch), None)
    if exact is not None:
        return exact.reference(benchmark, f"{origin} at batch {batch} ({len(exact.values)} runs)")
    below = [r for r in records if r.batch < batch]
    above = [r for r in records if r.batch > batch]
    if below and above:
        return _interpolated(benchmark, batch, below[-1], above[0], origin)
    if above:
        smallest = above[0]
        return smallest.reference(benchmark, f"{origin} at batch {smallest.batch}, the smallest: rcp_checker holds a "
                                             f"run at batch {batch} to it ({len(smallest.values)} runs)")
    largest = below[-1].batch if below else None
    raise NoReferenceError(f"{origin}: no point at or above batch {batch} (the largest is {largest}); rcp_checker "
                           "asks for a new RCP there")


def reference(benchmark: str, global_batch: int, ruleset: str | None = None) -> Reference:
    """The epochs (samples) a run of `benchmark` at `global_batch` needs: RCPs, else published points."""
    rounds = rcp_rulesets(benchmark)
    if rounds:
        chosen = ruleset if ruleset in rounds else rounds[-1]
        return _at_batch(benchmark, global_batch, _rcp_records(benchmark, chosen),
                         f"mlperf-logging RCP training_{chosen} {benchmark}")
    records, round_ = _published_records(benchmark)
    if records:
        return _at_batch(benchmark, global_batch, records, f"published {benchmark} {round_} logs (convergence.yaml)")
    raise NoReferenceError(f"mlperf-logging has no RCPs for {benchmark!r} and convergence.yaml no points")


def from_runs(values: Sequence[float], label: str) -> Reference:
    """A reference made of a folder's own converged runs (their olympic mean from 3 runs on)."""
    return Reference(_olympic("", values), statistics.pstdev(values), len(values), label)
