"""common.results.scoring: the olympic mean as result_summarizer computes it."""

from __future__ import annotations

import pytest

from common.results.scoring import olympic


def test_the_fastest_and_the_slowest_are_left_out() -> None:
    score = olympic([10.0, 1.0, 4.0, 6.0, 100.0])
    assert score.minutes == pytest.approx((4 + 6 + 10) / 3)
    assert score.counted == (0, 2, 3)


def test_a_dropped_run_counts_as_the_slowest() -> None:
    score = olympic([10.0, 1.0, None, 6.0, 4.0])
    assert score.minutes == pytest.approx((4 + 6 + 10) / 3)
    assert "the dropped run counts as the slowest" in score.reason


@pytest.mark.parametrize(("times", "reason"), [
    ([1.0, None, None, 2.0, 3.0], "2 of 5 runs dropped (not converged or not compliant); at most 1 may be"),
    ([1.0, 2.0], "2 scored run(s): too few for an olympic mean"),
    ([1.0, None], "1 scored run(s): too few for an olympic mean with 1 dropped"),
    ([], "0 scored run(s): too few for an olympic mean"),
])
def test_no_score_says_why(times: list[float | None], reason: str) -> None:
    score = olympic(times)
    assert (score.minutes, score.counted, score.reason) == (None, (), reason)


def test_more_may_be_dropped_where_the_rules_say_so() -> None:
    # unet3d: four dropped, the four fastest left out.
    times = [None, None, None, None, *[float(t) for t in range(1, 37)]]
    assert olympic(times, max_dropped=4).minutes == pytest.approx(sum(range(5, 37)) / 32)


def test_a_review_scaling_factor_multiplies_the_mean() -> None:
    score = olympic([3.0, 1.0, 2.0], scaling=1.5)
    assert score.minutes == pytest.approx(3.0) and score.reason.endswith("times 1.5 (scaling.json)")
