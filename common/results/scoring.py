"""The MLPerf score of one benchmark folder, computed as `result_summarizer` computes it.

Every run that fails the compliance checker (a run that missed the quality target included) is
dropped; at most `max_dropped` may be (one; four for unet3d), else there is no score. The rest
are sorted, the fastest is left out, and so is the slowest unless a run was dropped (the dropped
run counts as the slowest); the score is the mean of what remains, times the review's
`scaling.json` factor when the folder has one.

API:
- `olympic(times, *, max_dropped=1, scaling=1.0) -> Score`: `times` holds one entry per run,
  minutes or None for a dropped run.
- `Score.minutes` (None with `Score.reason` when no score can be given), `Score.counted`: the
  indices of the runs the mean is made of.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    minutes: float | None
    counted: tuple[int, ...]
    reason: str


def olympic(times: list[float | None], *, max_dropped: int = 1, scaling: float = 1.0) -> Score:
    scored = sorted((t, i) for i, t in enumerate(times) if t is not None)
    dropped = len(times) - len(scored)
    if dropped > max_dropped:
        return Score(None, (), f"{dropped} of {len(times)} runs dropped (not converged or not compliant); "
                               f"at most {max_dropped} may be")
    countable = scored[max_dropped:len(scored) - (max_dropped - dropped)]
    if not countable:
        return Score(None, (), f"{len(scored)} scored run(s): too few for an olympic mean"
                               + (f" with {dropped} dropped" if dropped else ""))
    # The same operations in the same order as result_summarizer, so the floats are equal.
    mean = sum(t for t, _ in countable) * 1.0 / len(countable)
    left_out = "the fastest run" + (" (the dropped run counts as the slowest)" if dropped else " and the slowest")
    reason = f"olympic mean of {len(countable)} of {len(times)} runs, without {left_out}"
    if scaling != 1.0:
        reason += f", times {scaling:g} (scaling.json)"
    return Score(mean * scaling, tuple(sorted(i for _, i in countable)), reason)
