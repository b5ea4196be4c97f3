"""common.results.convergence against mlperf-logging's own rcp_checker, on every RCP file it ships."""

from __future__ import annotations

import itertools
import logging

import pytest
from mlperf_logging.rcp_checker.rcp_checker import RCP_Checker, submission_runs

from common.results import convergence

# Every benchmark and round mlperf-logging has RCP files for, that its rcp_checker can load (it has no run count
# for the old dlrm any more, so it cannot load dlrm's files; convergence reads them the same way as the others).
_ALL = [(benchmark, ruleset) for benchmark in sorted(submission_runs["training"])
        for ruleset in convergence.rcp_rulesets(benchmark)]


def _theirs(checker: RCP_Checker, batch: int) -> tuple[float, float] | None:
    """What rcp_checker holds a run at `batch` to, over all its records (its `full_rcps` pass)."""
    record = checker._find_rcp(batch, "full_rcps")
    if record is None:
        below, above = checker._find_top_min_rcp(batch, "full_rcps"), checker._find_bottom_max_rcp(batch, "full_rcps")
        if below and above:
            record = checker._create_interp_rcp(batch, below, above)[1]
        elif above:
            record = checker._find_min_rcp("full_rcps")
    return None if record is None else (float(record["RCP Mean"]), float(record["RCP Stdev"]))


def test_every_shipped_rcp_file_is_read() -> None:
    assert len(_ALL) > 60 and ("maskrcnn", "3.1.0") in _ALL and ("llama31_8b", "6.1.0") in _ALL
    assert convergence.rcp_rulesets("dlrm") == ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]
    assert convergence.reference("dlrm", 55296, "2.1.0").runs > 0


@pytest.mark.parametrize(("benchmark", "ruleset"), _ALL)
def test_mean_and_spread_are_rcp_checkers_at_every_batch(benchmark: str, ruleset: str) -> None:
    logging.disable(logging.CRITICAL)
    try:
        checker = RCP_Checker("training", ruleset, benchmark, False)
    finally:
        logging.disable(logging.NOTSET)
    sizes = sorted({record["BS"] for record in checker.rcp_data.values()})
    probes = {sizes[0] // 2, *sizes, *((a + b) // 2 for a, b in itertools.pairwise(sizes)), sizes[-1] * 2}
    for batch in sorted(probes):
        theirs = _theirs(checker, batch)
        if theirs is None:
            with pytest.raises(convergence.NoReferenceError, match=f"no point at or above batch {batch}"):
                convergence.reference(benchmark, batch, ruleset)
            continue
        ours = convergence.reference(benchmark, batch, ruleset)
        assert (ours.mean, ours.stdev) == pytest.approx(theirs, rel=1e-12), batch


def test_the_source_says_which_points_and_how() -> None:
    assert convergence.reference("maskrcnn", 96).source == (
        "mlperf-logging RCP training_3.1.0 maskrcnn at batch 96 (20 runs)")
    assert convergence.reference("maskrcnn", 100, "3.0.0").source == (
        "mlperf-logging RCP training_3.0.0 maskrcnn, interpolated between batch 96 and 128 as rcp_checker does")
    assert convergence.reference("maskrcnn", 2).source.startswith(
        "mlperf-logging RCP training_3.1.0 maskrcnn at batch 8, the smallest: rcp_checker holds a run at batch 2 to it")
    # a round without RCPs for the benchmark falls back to the newest that has them
    assert convergence.reference("maskrcnn", 96, "0.7.0").source.startswith("mlperf-logging RCP training_3.1.0")


def test_gnmt_takes_the_published_v07_points() -> None:
    at_3072 = convergence.reference("gnmt", 3072)
    assert at_3072.runs == 40 and 4.0 < at_3072.mean < 4.3
    between = convergence.reference("gnmt", 4096)
    assert between.source.endswith("interpolated between batch 3072 and 8192 as rcp_checker does")
    with pytest.raises(convergence.NoReferenceError, match="the largest is 16384"):
        convergence.reference("gnmt", 32768)


def test_an_unknown_benchmark_has_no_reference() -> None:
    with pytest.raises(convergence.NoReferenceError, match="no RCPs for 'nonesuch'"):
        convergence.reference("nonesuch", 8)
