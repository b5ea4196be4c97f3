"""common.mlperf.compliance: the checker's verdict, split into complaints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.mlperf import compliance
from tests.conftest import REPO_ROOT


def _contract_log(tmp_path: Path, env: dict[str, str], bbox: float) -> Path:
    log = tmp_path / "result_0.txt"
    subprocess.run([sys.executable, "-m", "tests.mlperf.contract_training", "--seed", "1",
                    "--log-file", str(log), "--bbox", str(bbox)],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    return log


def test_a_converged_log_passes(tmp_path: Path, driver_env: dict[str, str]) -> None:
    verdict = compliance.check_log(_contract_log(tmp_path, driver_env, 0.4), "3.1.0")
    assert verdict.passed and verdict.complaints == []
    assert verdict.summary() == "compliance (3.1.0): PASSED"


def test_a_missing_key_is_its_own_complaint(tmp_path: Path, driver_env: dict[str, str]) -> None:
    log = _contract_log(tmp_path, driver_env, 0.4)
    log.write_text("".join(line for line in log.read_text().splitlines(keepends=True)
                           if '"max_image_size"' not in line))
    verdict = compliance.check_log(log, "3.1.0")
    assert not verdict.passed and not verdict.quality_target_missed
    assert verdict.other_complaints == ["Required EXACTLY_ONE occurrence of 'max_image_size' but found 0"]


def test_no_verdict_is_an_error(tmp_path: Path, driver_env: dict[str, str]) -> None:
    log = _contract_log(tmp_path, driver_env, 0.4)
    with pytest.raises(compliance.ComplianceCheckerError, match=r"ruleset 9\.9\.9"):
        compliance.check_log(log, "9.9.9")
    with pytest.raises(compliance.ComplianceCheckerError, match="no such MLPerf log"):
        compliance.check_log(tmp_path / "absent.txt", "3.1.0")
