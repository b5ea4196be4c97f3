"""`results.summary` of 100 MLPerf logs of 400 KB against `mlperf_logging.result_summarizer`, same folder, same run.

The folder is a submission of 20 systems x 5 Mask R-CNN runs (tests/results/generated.py), each
log padded with per-step :::MLLOG records to the size of a real Mask R-CNN submission log. Timed:
the summary in this process with one worker per core and with one worker (the summarizer uses
one), `invoke results.summary` as a user runs it, and `python -m mlperf_logging.result_summarizer`
(ruleset 3.1.0), in --repeat rounds that alternate them. Prints the best times, the ratios (best
against best, and the median of the rounds' own ratios) and whether the scores agree; asserts nothing.

    python perf/results_summary.py [--logs 100] [--kb 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.results import summary  # noqa: E402
from perf.timing import best_of  # noqa: E402
from tests.results.generated import Run, log_lines, write_submission  # noqa: E402

RUNS = 5
REFERENCE = "result_summarizer (CLI)"


def _noise_lines(kb: int) -> int:
    """Per-epoch padding records that bring one log to about `kb` kilobytes."""
    def size(noise: int) -> int:
        return sum(len(line) + 1 for line in log_lines("maskrcnn", Run(20), noise_lines=noise))

    per_epoch_line = (size(100) - size(0)) / 100
    return max(0, round((kb * 1000 - size(0)) / per_epoch_line))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=100)
    parser.add_argument("--kb", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="perf-results-") as scratch:
        work = Path(scratch)
        systems = {f"sys{i:02d}": {"maskrcnn": [Run(20 + i + r / 10) for r in range(RUNS)]}
                   for i in range(args.logs // RUNS)}
        org = write_submission(work, "Perf", systems, noise_lines=_noise_lines(args.kb))
        logs = sorted(org.glob("results/*/maskrcnn/result_*.txt"))
        sizes = [p.stat().st_size for p in logs]
        print(f"{len(logs)} logs, {sum(sizes) / len(sizes) / 1000:.0f} KB each on average "
              f"({len(systems)} systems x {RUNS} Mask R-CNN runs); {len(os.sched_getaffinity(0))} cores")

        ours = summary.summarize(org)
        csv_path = work / "summary.csv"
        summarizer = [sys.executable, "-m", "mlperf_logging.result_summarizer", str(org), "training", "3.1.0",
                      "--csv", str(csv_path)]
        invoke = [str(Path(sys.executable).parent / "invoke"), "results.summary", "--dir", str(org)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        contenders = {
            "results.summary in process, one worker per core": lambda: summary.summarize(org),
            "results.summary in process, one worker": lambda: summary.summarize(org, workers=1),
            "invoke results.summary (CLI)": lambda: subprocess.run(invoke, cwd=ROOT, env=env, capture_output=True,
                                                                   check=True),
            REFERENCE: lambda: subprocess.run(summarizer, cwd=work, capture_output=True, check=True),
        }
        # Rounds alternate the contenders, so each round's ratios compare runs under about the same load.
        rounds = [{name: best_of(run, 1) for name, run in contenders.items()} for _ in range(args.repeat)]
        best = {name: min(r[name] for r in rounds) for name in contenders}
        for name in contenders:
            print(f"{name:<52} {best[name]:7.2f} s  (rounds: {', '.join(f'{r[name]:.2f}' for r in rounds)})")
        for name in list(contenders)[:-1]:
            ratios = sorted(r[name] / r[REFERENCE] for r in rounds)
            print(f"{name} / result_summarizer: {best[name] / best[REFERENCE]:.2f} best against best, "
                  f"{ratios[len(ratios) // 2]:.2f} median of rounds")
        with csv_path.open(newline="") as rows:
            theirs = {row["system"]: float(row["maskrcnn"]) for row in csv.DictReader(rows)}
        agree = sum(abs(theirs[r.folder.system] - (r.score.minutes or 0.0)) < 1e-9 for r in ours.results)
        print(f"scores equal to result_summarizer's: {agree} of {len(ours.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
