"""The MLPerf compliance checker's verdict on one log, as data.

Runs `python -m mlperf_logging.compliance_checker --usage training --ruleset R LOG` in a child
process (the checker configures the root logger and calls sys.exit, so it does not belong in
ours) and splits its report into one complaint per failed rule. Stdlib only: the control plane
uses it; the checker itself must be installed in the interpreter given (default: this one).

API:
- `check_log(log_path, ruleset, *, python=sys.executable) -> Verdict`
- `check_in_worker(log_path, ruleset) -> Verdict`: the same checks called in this process, as
  `result_summarizer` calls them (quiet), for worker processes that check many logs: it silences
  the root logger of the process it runs in, so call it only in a process of its own.
- `Verdict.passed`: the checker said SUCCESS.
- `Verdict.complaints`: one text per failed rule (the checker's own words).
- `Verdict.quality_target_missed`: one complaint is the quality target (the eval_accuracy rule that
  must hold in at least one evaluation); `Verdict.other_complaints` lists the rest. A short or
  sample run is compliant in every other respect when `other_complaints` is empty.
- `Verdict.summary() -> str`: one line for people.
- `ComplianceCheckerError`: the checker could not judge (crashed, unknown ruleset, no such file).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SEPARATOR = "\n" + "-" * 30 + "\n"
_RECORD = re.compile(r"^(INFO|WARNING|ERROR) - ", re.MULTILINE)
_QUALITY_PREFIX = "Failed checks for eval_accuracy"


class ComplianceCheckerError(RuntimeError):
    """The compliance checker did not produce a verdict."""


@dataclass(frozen=True)
class Verdict:
    log_path: Path
    ruleset: str
    passed: bool
    complaints: list[str]

    @property
    def quality_target_missed(self) -> bool:
        return any(c.startswith(_QUALITY_PREFIX) for c in self.complaints)

    @property
    def other_complaints(self) -> list[str]:
        return [c for c in self.complaints if not c.startswith(_QUALITY_PREFIX)]

    def summary(self) -> str:
        if self.passed:
            return f"compliance ({self.ruleset}): PASSED"
        others = len(self.other_complaints)
        parts = (["quality target not reached"] if self.quality_target_missed else []) + (
            [f"{others} other rule(s) failed"] if others else []
        )
        return f"compliance ({self.ruleset}): FAILED: " + ", ".join(parts)


def _records(report: str) -> list[tuple[str, str]]:
    marks = list(_RECORD.finditer(report))
    return [
        (m.group(1), report[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(report)].strip())
        for i, m in enumerate(marks)
    ]


def check_log(log_path: Path, ruleset: str, *, python: str = sys.executable) -> Verdict:
    if not log_path.is_file():
        raise ComplianceCheckerError(f"{log_path}: no such MLPerf log")
    with tempfile.TemporaryDirectory(prefix="compliance-") as tmp:
        report_path = Path(tmp) / "report.log"
        command = [python, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                   "--ruleset", ruleset, "--log_output", str(report_path), str(log_path)]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        report = report_path.read_text(encoding="utf-8") if report_path.exists() else ""
    records = _records(report)
    levels = [level for level, _ in records]
    if proc.returncode == 0 and ("INFO", "SUCCESS") in records:
        return Verdict(log_path, ruleset, True, [])
    if proc.returncode != 1 or ("ERROR", "FAILED") not in records:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ComplianceCheckerError(
            f"compliance checker (ruleset {ruleset}) gave no verdict on {log_path} "
            f"(exit {proc.returncode}): " + " | ".join(tail)
        )
    last_warning = max((i for i, level in enumerate(levels) if level == "WARNING"), default=None)
    complaints = [] if last_warning is None else [
        c.strip() for c in records[last_warning][1].split(_SEPARATOR) if c.strip()
    ]
    return Verdict(log_path, ruleset, False, complaints)


def check_in_worker(log_path: Path, ruleset: str) -> Verdict:
    from mlperf_logging.compliance_checker import mlp_compliance  # noqa: PLC0415 - only in worker processes

    # The checker logs every rule through the root logger; its verdict is in the checker's state.
    logging.disable(logging.CRITICAL)
    # Configs still queued after a crash on an earlier log would be checked against the next one.
    mlp_compliance.enqueued_configs.clear()
    checker = mlp_compliance.make_checker(usage="training", ruleset=ruleset, quiet=True, werror=False)
    try:
        passed = checker.check_file(str(log_path), f"training_{ruleset}/common.yaml")
    except Exception as error:  # the checker's rules run as eval()'d code: anything can escape
        return Verdict(log_path, ruleset, False, [f"the compliance checker crashed on this log: "
                                                   f"{type(error).__name__}: {error}"])
    complaints = [] if passed else [*checker.overwritable.values(), *checker.not_overwritable]
    return Verdict(log_path, ruleset, passed, complaints)
