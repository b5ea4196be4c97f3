"""Which MLPerf Training ruleset scores a folder, how many runs it needs, and the quality targets.

The rulesets, the benchmarks of each round and the required run counts come from
`mlperf_logging` itself (`compliance_checker` and `benchmark_meta`), so they move with the
checker. Only `:::MLLOG` rulesets (0.7.0 on) are offered: 0.6.0 logs use another line format.

A folder's ruleset: `--ruleset` when given; else what the logs say; else the benchmark's default,
the last round that had it (maskrcnn: 3.1.0, gnmt: 0.7.0). Logs say it when they pin it down:
closed-division logs without `gradient_accumulation_steps`, which the closed rules require from
1.0.0 on, are 0.7.0 logs.

API:
- `known_rulesets() -> list[str]`, `rulesets_for(benchmark) -> list[str]` (oldest first)
- `default_ruleset(benchmark) -> str | None`
- `choose(benchmark, logs, requested) -> Choice`: ruleset (None when none fits) and why
- `required_runs(benchmark) -> int | None`, `max_dropped(benchmark) -> int`
- `QUALITY_TARGETS[benchmark] -> {metric: target}`, `metrics(value) -> {metric: value}`
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

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
_FROM_1_0_CLOSED = "gradient_accumulation_steps"


@dataclass(frozen=True)
class Choice:
    ruleset: str | None
    source: str


def _version(ruleset: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ruleset.split("."))


@cache
def known_rulesets() -> list[str]:
    from mlperf_logging.compliance_checker.mlp_compliance import rule_choices  # noqa: PLC0415 - light CLI

    return sorted((r for r in rule_choices() if _version(r) >= FIRST_MLLOG_RULESET), key=_version)


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
    closed = [log for log in logs if log.problem is None and log.submission.get("division") == "closed"]
    if "0.7.0" in candidates and closed and all(_FROM_1_0_CLOSED not in log.keys for log in closed):
        return Choice("0.7.0", f"detected: closed-division logs without {_FROM_1_0_CLOSED}")
    return Choice(candidates[-1], f"default: the last round with {benchmark}")


def metrics(benchmark: str, value: Any) -> dict[str, float]:
    """An eval_accuracy value as named numbers (Mask R-CNN logs a dict, GNMT one BLEU fraction)."""
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {_SCALAR_METRIC.get(benchmark, "accuracy"): float(value)}
    return {}
