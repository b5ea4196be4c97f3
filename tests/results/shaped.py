"""MLPerf logs with the time structure real runs have, for the projection's tests.

Their keys are those of `generated.py`'s closed-division logs (so the compliance checker passes a Mask R-CNN
one), their clock that of a real run.

`Timing` is one run's clock: run_start at 0, the first epoch ends at `first_epoch` seconds (start-up
and warm-up), the second takes `second_epoch`, every later one `epoch` (+ `jitter` alternating), and
each evaluation's result comes `eval` seconds after its epoch's end. The figures of `NVIDIA_8XH100` are
those of NVIDIA's v3.1 Mask R-CNN logs on one DGX H100 at batch 96 (training_results_v3.1
NVIDIA/results/eos_ngc23.04_pytorch: epoch 1 ends at 75.8 s, then 83.5 s, then 81.3-82.0 s per epoch,
results 9-12 s after an epoch's end, 14 epochs to the target).

Logs come in the shapes of the implementations:
- `nvidia`: epoch and block lines, eval_start right after epoch_stop, the result during the next epoch;
- `project`: this project's Mask R-CNN (evaluation in the background, the result logged during the next
  epoch, the run stopping in that epoch once the target is reached);
- `gnmt07`: NVIDIA's GNMT v0.7 (no eval_start: the result right after the epoch);
- `samples`: an LLM log (blocks of `samples_per_eval` samples, evaluations by samples_count).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.results import generated

T0_MS = 1_750_000_000_000


@dataclass(frozen=True)
class Timing:
    first_epoch: float
    second_epoch: float
    epoch: float
    eval: float
    jitter: float = 0.0

    def trained(self, epoch: int) -> float:
        """Seconds from run_start to the end of `epoch`'s training."""
        if epoch == 1:
            return self.first_epoch
        later = sum(self.epoch + (self.jitter if k % 2 else -self.jitter) for k in range(3, epoch + 1))
        return self.first_epoch + self.second_epoch + later


NVIDIA_8XH100 = Timing(first_epoch=75.8, second_epoch=83.5, epoch=81.5, eval=11.0, jitter=0.3)


def mllog_line(seconds: float, key: str, value: Any = None, **metadata: Any) -> str:
    record = {"namespace": "", "time_ms": T0_MS + round(seconds * 1000), "event_type": "POINT_IN_TIME", "key": key,
              "value": value, "metadata": {"file": "shaped.py", "lineno": 1, **metadata}}
    return ":::MLLOG " + json.dumps(record)


def _header(benchmark: str, global_batch: int) -> list[str]:
    """What a closed-division log says before its first epoch (generated.py's keys), at `global_batch`."""
    lines = generated.log_lines(benchmark, generated.Run(1.0), start_ms=T0_MS)
    head = [line for line in lines[:next(i for i, line in enumerate(lines) if '"epoch_start"' in line)]
            if '"global_batch_size"' not in line]
    return [*head[:1], mllog_line(-60, "global_batch_size", global_batch), *head[1:]]


def log_lines(timing: Timing, *, epochs: int, converged: bool = True, benchmark: str = "maskrcnn",
              global_batch: int = 96, shape: str = "nvidia", samples_per_eval: int = 12288) -> list[str]:
    """A run that reaches the target at its `epochs`-th evaluation (or stops there, aborted)."""
    lines = _header(benchmark, global_batch)
    for epoch in range(1, epochs + 1):
        begin, end = (0.0 if epoch == 1 else timing.trained(epoch - 1)), timing.trained(epoch)
        result = end + timing.eval
        value = 0.4 if (converged and epoch == epochs) else 0.2
        if shape == "samples":
            at = epoch * samples_per_eval
            lines += [mllog_line(begin, "block_start", samples_count=samples_per_eval),
                      mllog_line(end, "block_stop", samples_count=samples_per_eval),
                      mllog_line(end, "eval_start", samples_count=at),
                      mllog_line(result, "eval_accuracy", 3.0 - value, samples_count=at),
                      mllog_line(result, "eval_stop", samples_count=at)]
            continue
        if epoch == 1 or shape != "project":  # the project logs the next epoch_start before the result
            lines.append(mllog_line(begin, "epoch_start", epoch_num=epoch))
        if shape == "nvidia" and epoch == 1:  # NVIDIA's next block starts before the result
            lines.append(mllog_line(begin, "block_start", first_epoch_num=epoch, epoch_count=1))
        lines.append(mllog_line(end, "epoch_stop", epoch_num=epoch))
        accuracy = {"BBOX": value, "SEGM": value} if benchmark == "maskrcnn" else value
        if shape == "gnmt07":
            lines.append(mllog_line(result, "eval_accuracy", accuracy, epoch_num=epoch))
            continue
        lines.append(mllog_line(end, "eval_start", epoch_num=epoch))
        if epoch < epochs:  # the next epoch starts before the result comes
            lines.append(mllog_line(end + 0.5, "epoch_start", epoch_num=epoch + 1) if shape == "project" else
                         mllog_line(end + 0.5, "block_start", first_epoch_num=epoch + 1, epoch_count=1))
        lines += [mllog_line(result, "eval_accuracy", accuracy, epoch_num=epoch),
                  mllog_line(result, "eval_stop", epoch_num=epoch)]
    stop = timing.trained(epochs) + timing.eval + 0.2
    lines.append(mllog_line(stop, "run_stop", status="success" if converged else "aborted"))
    return lines


def write_log(path: Path, timing: Timing, **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(log_lines(timing, **options)) + "\n", encoding="utf-8")
    return path


def real_minutes(timing: Timing, epochs: int) -> float:
    return (timing.trained(epochs) + timing.eval + 0.2) / 60
