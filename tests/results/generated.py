"""MLPerf result folders written from chosen run times, for the results tests and perf/results_summary.py.

A log here is what a benchmark's training writes: the `:::MLLOG` lines of the closed rules of
its ruleset (Mask R-CNN 3.1.0, or 0.7.0 with `old_rules`; GNMT 0.7.0), with the run taking
`minutes` between run_start and run_stop, one eval per epoch, and, where asked, the faults a
real folder has: the quality target missed, a required key missing, lines cut short, noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

T0_MS = 1_700_000_000_000
EPOCHS = 4
# The closed hyper-parameters each benchmark logs (values the closed rules accept).
_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "maskrcnn": {"global_batch_size": 16, "opt_base_learning_rate": 0.02, "opt_learning_rate_warmup_steps": 500,
                 "opt_learning_rate_warmup_factor": 1 / 3, "num_image_candidates": 1000,
                 "opt_learning_rate_decay_factor": 0.1, "opt_learning_rate_decay_steps": [60000, 80000],
                 "min_image_size": 800, "max_image_size": 1333},
    "gnmt": {"global_batch_size": 128, "opt_base_learning_rate": 0.001, "opt_learning_rate_alt_decay_func": True,
             "opt_learning_rate_alt_warmup_func": True, "opt_learning_rate_decay_factor": 0.5,
             "opt_learning_rate_decay_interval": 809, "opt_learning_rate_decay_steps": 4,
             "opt_learning_rate_remain_steps": 6453, "opt_learning_rate_warmup_steps": 200,
             "max_sequence_length": 50},
}
TRAIN_SAMPLES = {"maskrcnn": 117266, "gnmt": 3498161}


@dataclass(frozen=True)
class Run:
    """One result file to write: its time to train and what is wrong with it, if anything."""

    minutes: float
    converged: bool = True
    drop_key: str | None = None
    cut_last_line: bool = False
    benchmark: str | None = None  # the benchmark the log says it is (default: its folder's; others log no
    # hyper-parameters)


def _line(time_ms: float, key: str, value: Any = None, metadata: dict[str, Any] | None = None,
          event: str = "POINT_IN_TIME") -> str:
    record = {"namespace": "", "time_ms": int(time_ms), "event_type": event, "key": key, "value": value,
              "metadata": {"file": "train.py", "lineno": 1, **(metadata or {})}}
    return ":::MLLOG " + json.dumps(record)


def _accuracy(benchmark: str, fraction: float) -> Any:
    """An eval value `fraction` of the way to the target (1.0 reaches it)."""
    if benchmark == "maskrcnn":
        return {"BBOX": round(0.377 * fraction, 4), "SEGM": round(0.339 * fraction, 4)}
    return round(0.240 * fraction, 4)  # GNMT's BLEU target (other benchmarks: any number)


def log_lines(benchmark: str, run: Run, *, start_ms: float = T0_MS, old_rules: bool = False,
              noise_lines: int = 0, org: str = "Backend.AI") -> list[str]:
    kind = run.benchmark or benchmark
    init = start_ms - 60_000
    lines = [_line(init, "cache_clear", True), _line(init, "init_start", event="INTERVAL_START")]
    for key, value in (("benchmark", kind), ("org", org), ("division", "closed"),
                       ("status", "onprem"), ("platform", "1xCPU")):
        lines.append(_line(init, f"submission_{key}", value))
    lines.append(_line(init, "seed", 1))
    hyper = dict(_HYPERPARAMETERS.get(kind, {}))
    if not old_rules and kind == "maskrcnn":
        hyper["gradient_accumulation_steps"] = 1
    lines += [_line(init, key, value) for key, value in hyper.items()]
    lines += [_line(start_ms - 1, "init_stop", event="INTERVAL_END"),
              _line(start_ms, "run_start", event="INTERVAL_START"),
              _line(start_ms, "train_samples", TRAIN_SAMPLES.get(kind, 1000)), _line(start_ms, "eval_samples", 5000)]
    epoch_ms = run.minutes * 60_000 / EPOCHS
    for epoch in range(1, EPOCHS + 1):
        begin, end = start_ms + (epoch - 1) * epoch_ms, start_ms + epoch * epoch_ms
        meta = {"epoch_num": epoch}
        lines.append(_line(begin, "epoch_start", metadata=meta, event="INTERVAL_START"))
        lines += [_line(begin + (end - begin) * i / (noise_lines + 1), "tracked_stats_loss", 1.0 / (i + 1),
                        {"step": i}) for i in range(noise_lines)]
        lines.append(_line(end - 0.2 * epoch_ms, "epoch_stop", metadata=meta, event="INTERVAL_END"))
        lines.append(_line(end - 0.2 * epoch_ms, "eval_start", metadata=meta, event="INTERVAL_START"))
        fraction = epoch / EPOCHS if run.converged else 0.9 * epoch / EPOCHS
        lines.append(_line(end, "eval_accuracy", _accuracy(kind, fraction), meta))
        lines.append(_line(end, "eval_stop", metadata=meta, event="INTERVAL_END"))
    status = "success" if run.converged else "aborted"
    lines.append(_line(start_ms + run.minutes * 60_000, "run_stop", metadata={"status": status}, event="INTERVAL_END"))
    if run.drop_key:
        lines = [line for line in lines if f'"key": "{run.drop_key}"' not in line]
    return lines


def write_log(path: Path, benchmark: str, run: Run, **options: Any) -> Path:
    lines = log_lines(benchmark, run, **options)
    text = "\n".join(lines) + "\n"
    if run.cut_last_line:
        text = text[: -len(lines[-1]) // 2]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_folder(folder: Path, benchmark: str, runs: list[Run], *, first_index: int = 0, **options: Any) -> list[Path]:
    """result_<first_index>.txt ... in `folder`, runs starting an hour apart."""
    return [write_log(folder / f"result_{first_index + i}.txt", benchmark, run,
                      start_ms=T0_MS + i * 3_600_000, **options) for i, run in enumerate(runs)]


def system_description(submitter: str, system: str, accelerators: int = 8) -> dict[str, Any]:
    """A description with every schema field, as a submitter fills it in."""
    from common.results.systems import SCHEMA_FIELDS  # noqa: PLC0415 - the schema lives there

    described = {key: "" for key in SCHEMA_FIELDS}
    described.update({"submitter": submitter, "division": "closed", "status": "onprem", "system_name": system,
                      "number_of_nodes": "1", "host_processors_per_node": "2",
                      "host_processor_model_name": "AMD EPYC 7742", "host_processor_core_count": "64",
                      "accelerators_per_node": str(accelerators), "accelerator_model_name": "NVIDIA A100-SXM4-40GB",
                      "framework": "PyTorch 2.4.1"})
    return described


def write_submission(root: Path, submitter: str, systems: dict[str, dict[str, list[Run]]], **options: Any) -> Path:
    """`root/<submitter>/{results/<system>/<benchmark>/, systems/<system>.json}`; returns the submitter folder."""
    folder = root / submitter
    for system, benchmarks in systems.items():
        for benchmark, runs in benchmarks.items():
            write_folder(folder / "results" / system / benchmark, benchmark, runs, **options)
        described = folder / "systems" / f"{system}.json"
        described.parent.mkdir(parents=True, exist_ok=True)
        described.write_text(json.dumps(system_description(submitter, system), indent=2), encoding="utf-8")
    return folder
