"""Which MLPerf Training ruleset scores a folder, how many runs it needs, and the quality targets.

The rulesets, the benchmarks of each round and the required run counts come from
`mlperf_logging` itself (`compliance_checker` and `benchmark_meta`), so they move with the
checker. Only `:::MLLOG` rulesets (0.7.0 on) are offered: 0.6.0 logs use another line format.

A folder's ruleset: `--ruleset` when given; else what the logs say; else the benchmark's default,
the last round that had it (maskrcnn: 3.1.0, gnmt: 0.7.0, llama31_8b: 6.1.0). Logs say it when the
newest rounds require keys none of them has: the newest round whose required keys (the checker's
EXACTLY_ONE and AT_LEAST_ONE rules for the logs' division) one of the logs has is taken. Closed
0.7.0 logs lack `gradient_accumulation_steps`, which the closed rules require from 1.0.0 on;
llama31_8b logs of 5.1 and 6.0 lack the `lowest_numerical_precision_*` keys 6.1.0 requires.

API:
- `known_rulesets() -> list[str]`, `rulesets_for(benchmark) -> list[str]` (oldest first)
- `default_ruleset(benchmark) -> str | None`
- `choose(benchmark, logs, requested) -> Choice`: ruleset (None when none fits) and why
- `required_keys(ruleset, benchmark, division) -> frozenset[str]`: what a round's rules require in a log
- `required_runs(benchmark) -> int | None`, `max_dropped(benchmark) -> int`
- `QUALITY_TARGETS[benchmark] -> {metric: target}`, `metrics(value) -> {metric: value}`
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from common.results.logs import RunLog

USAGE = "training"
FIRST_MLLOG_RULESET = (0, 7, 0)
# How many non-compliant runs result_summarizer and package_checker accept per benchmark folder.
_MAX_DROPPED = {"unet3d": 4}
# What the closed rules of each benchmark accept as reaching the target (compliance_checker yaml).
QUALITY_TARGETS: dict[str, dict[str, float]] = {
    "maskrcnn": {"BBOX": 0.377, "SEGM": 0.339},
    "gnmt": {"BLEU": 0.240},
}
_SCALAR_METRIC = {"gnmt": "BLEU"}


@dataclass(frozen=True)
class Choice:
    ruleset: str | None
    source: str


def version(ruleset: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ruleset.split("."))


@cache
def known_rulesets() -> list[str]:
    from mlperf_logging.compliance_checker.mlp_compliance import rule_choices  # noqa: PLC0415 - light CLI

    return sorted((r for r in rule_choices() if version(r) >= FIRST_MLLOG_RULESET), key=version)


@cache
def rulesets_for(benchmark: str) -> list[str]:
    from mlperf_logging.benchmark_meta import get_allowed_benchmarks  # noqa: PLC0415

    found = []
    for ruleset in known_rulesets():
        try:
            if benchmark in get_allowed_benchmarks(USAGE, ruleset):
                found.append(ruleset)
        except ValueError:  # a checker ruleset benchmark_meta has no round for
            continue
    return found


def default_ruleset(benchmark: str) -> str | None:
    candidates = rulesets_for(benchmark)
    return candidates[-1] if candidates else None


def required_runs(benchmark: str) -> int | None:
    from mlperf_logging.benchmark_meta import get_result_file_counts  # noqa: PLC0415

    return get_result_file_counts(USAGE).get(benchmark)


def max_dropped(benchmark: str) -> int:
    return _MAX_DROPPED.get(benchmark, 1)


def choose(benchmark: str, logs: Iterable[RunLog], requested: str | None) -> Choice:
    candidates = rulesets_for(benchmark)
    if requested is not None:
        if requested not in known_rulesets():
            return Choice(None, f"unknown ruleset {requested} (mlperf_logging knows "
                                f"{', '.join(known_rulesets())})")
        if requested not in candidates:
            rounds = ", ".join(candidates) or "none"
            return Choice(None, f"ruleset {requested} has no {benchmark} benchmark (rulesets with it: {rounds})")
        return Choice(requested, "--ruleset")
    if not candidates:
        return Choice(None, f"no MLPerf Training round from 0.7.0 on has a benchmark named {benchmark!r}")
    if len(candidates) == 1:
        return Choice(candidates[0], f"the only round with {benchmark}")
    readable = [log for log in logs if log.problem is None]
    for newer, ruleset in enumerate(reversed(candidates)):
        if readable and not any(required_keys(ruleset, benchmark, log.submission.get("division", "closed")) <= log.keys
                                for log in readable):
            continue
        if newer == 0:
            break
        missing = sorted(required_keys(candidates[-1], benchmark, readable[0].submission.get("division", "closed"))
                         - readable[0].keys)
        return Choice(ruleset, f"detected: the newest round whose required keys the logs have ({candidates[-1]} "
                               f"also requires {', '.join(missing[:3])})")
    return Choice(candidates[-1], f"default: the last round with {benchmark}")


@cache
def required_keys(ruleset: str, benchmark: str, division: str) -> frozenset[str]:
    """The keys the checker's rules of a round require in a log (EXACTLY_ONE or AT_LEAST_ONE), from its YAML."""
    folder = resources.files("mlperf_logging.compliance_checker") / f"{USAGE}_{ruleset}"
    names: set[str] = set()
    for name in ("common.yaml", f"{division}_common.yaml", f"{division}_{benchmark}.yaml"):
        rules = folder / name
        if not rules.is_file():
            continue
        for rule in yaml.safe_load(rules.read_text()) or []:
            key = rule.get("KEY") if isinstance(rule, dict) else None
            if isinstance(key, dict) and key.get("REQ") in ("EXACTLY_ONE", "AT_LEAST_ONE"):
                names.add(key["NAME"])
    return frozenset(names)


def metrics(benchmark: str, value: Any) -> dict[str, float]:
    """An eval_accuracy value as named numbers (Mask R-CNN logs a dict, GNMT one BLEU fraction)."""
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {_SCALAR_METRIC.get(benchmark, "accuracy"): float(value)}
    return {}
