"""common.results.rulesets: rounds, run counts and defaults from mlperf_logging, agreeing with the benchmarks."""

from __future__ import annotations

from pathlib import Path

from common.results import rulesets
from common.results.logs import RunLog, read_log
from object_detection.run_and_time import BENCHMARK as MASKRCNN
from tests.results.generated import Run, write_log
from translation.run_and_time import GNMT


def test_each_benchmark_is_checked_by_default_with_the_ruleset_its_run_and_time_uses() -> None:
    assert rulesets.default_ruleset("maskrcnn") == MASKRCNN.ruleset == "3.1.0"
    assert rulesets.default_ruleset("gnmt") == GNMT.ruleset == "0.7.0"
    assert (rulesets.required_runs("maskrcnn"), rulesets.required_runs("gnmt")) == (5, 10)


def test_the_rounds_with_a_benchmark_come_from_the_checker() -> None:
    assert rulesets.rulesets_for("maskrcnn") == ["0.7.0", "1.0.0", "1.1.0", "2.0.0", "2.1.0", "3.0.0", "3.1.0"]
    assert rulesets.rulesets_for("gnmt") == ["0.7.0"]
    assert "0.6.0" not in rulesets.known_rulesets()  # its :::MLL lines are another format


def test_logs_pin_down_0_7_0_only_when_every_closed_log_lacks_the_1_0_key(tmp_path: Path) -> None:
    old = read_log(write_log(tmp_path / "a.txt", "maskrcnn", Run(10), old_rules=True))
    new = read_log(write_log(tmp_path / "b.txt", "maskrcnn", Run(10)))
    assert rulesets.choose("maskrcnn", [old], None).ruleset == "0.7.0"
    mixed = rulesets.choose("maskrcnn", [old, new], None)
    assert mixed == rulesets.Choice("3.1.0", "default: the last round with maskrcnn")
    assert rulesets.choose("bogus", [old], None).ruleset is None


def test_logs_of_an_older_round_are_scored_by_the_newest_round_whose_required_keys_they_have() -> None:
    assert "lowest_numerical_precision_in_linear" in rulesets.required_keys("6.1.0", "llama31_8b", "closed")
    assert "lowest_numerical_precision_in_linear" not in rulesets.required_keys("6.0.0", "llama31_8b", "closed")
    keys_of_5_1 = rulesets.required_keys("5.1.0", "llama31_8b", "closed") | {"cache_clear"}
    log_5_1 = RunLog(Path("result_0.txt"), 0, 60_000, "success", {"division": "closed"}, keys_of_5_1)
    choice = rulesets.choose("llama31_8b", [log_5_1], None)
    assert choice.ruleset == "6.0.0"
    assert choice.source.startswith("detected: the newest round whose required keys the logs have (6.1.0 also "
                                    "requires ")
    log_6_1 = RunLog(Path("result_0.txt"), 0, 60_000, "success", {"division": "closed"},
                     rulesets.required_keys("6.1.0", "llama31_8b", "closed"))
    assert rulesets.choose("llama31_8b", [log_6_1, log_5_1], None) == rulesets.Choice(
        "6.1.0", "default: the last round with llama31_8b")
    assert rulesets.choose("llama31_8b", [], None).ruleset == "6.1.0"


def test_eval_values_become_named_metrics() -> None:
    assert rulesets.metrics("maskrcnn", {"BBOX": 0.3, "SEGM": 0.2}) == {"BBOX": 0.3, "SEGM": 0.2}
    assert rulesets.metrics("gnmt", 0.241) == {"BLEU": 0.241}
    assert rulesets.metrics("gnmt", "n/a") == {}
