"""One division per system: run_and_time gives a series of another division its own system name, the
automatic name of an open series says so, a description is never rewritten to another division; and each
run's seed is drawn at random unless --seed fixes the series'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import systems
from tests.conftest import REPO_ROOT
from tests.results.generated import Run, write_log

CONTRACT = "tests.mlperf.contract_training"


def _series(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """run_and_time of a benchmark that, like the real ones, tells its division before the series."""
    code = (
        "import sys\n"
        "from common.mlperf import run_and_time as rt\n"
        f"from {CONTRACT} import division_of\n"
        f"bench = rt.Benchmark('maskrcnn', 'OBJECT_DETECTION', {CONTRACT!r}, '3.1.0', division=division_of)\n"
        "args, extra = rt.build_parser(bench, 'test').parse_known_args()\n"
        "sys.exit(rt.main(bench, args, extra))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "--results-dir", str(tmp_path / "results"), "--no-compliance",
                           *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _divisions(tmp_path: Path) -> dict[str, str]:
    return {p.stem: json.loads(p.read_text())["division"] for p in sorted((tmp_path / "systems").glob("*.json"))}


def _logs(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path / "results")) for p in (tmp_path / "results").glob("*/*/result_*"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_series_of_another_division_goes_under_its_own_system_name(tmp_path: Path,
                                                                      driver_env: dict[str, str]) -> None:
    assert _series(tmp_path, driver_env, "--system", "box", "--seed", "1")[0] == 0
    code, _, err = _series(tmp_path, driver_env, "--system", "box", "--seed", "2", "--division", "open")
    assert code == 0
    assert (f"run_and_time: {tmp_path / 'results' / 'box'} holds closed-division maskrcnn runs; these open-division "
            "runs go under system box-open (one division per system)") in err
    code, _, err = _series(tmp_path, driver_env, "--system", "box", "--seed", "3")  # closed again: box is closed
    assert code == 0 and "go under system" not in err
    assert _logs(tmp_path) == ["box-open/maskrcnn/result_0.txt", "box/maskrcnn/result_0.txt",
                               "box/maskrcnn/result_1.txt"]
    assert _divisions(tmp_path) == {"box": "closed", "box-open": "open"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_system_whose_description_says_another_division_is_split_too(tmp_path: Path,
                                                                       driver_env: dict[str, str]) -> None:
    """A description whose runs were deleted still names the division: it is never rewritten to another."""
    assert _series(tmp_path, driver_env, "--system", "box", "--seed", "1", "--division", "open")[0] == 0
    for log in (tmp_path / "results").glob("box/*/result_*.txt"):
        log.unlink()
    code, _, err = _series(tmp_path, driver_env, "--system", "box", "--seed", "2")
    assert code == 0
    assert f"{tmp_path / 'systems' / 'box.json'} describes an open-division system" in err
    assert _divisions(tmp_path) == {"box": "open", "box-closed": "closed"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_series_with_nowhere_of_its_division_to_go_is_refused_before_it_runs(
        tmp_path: Path, driver_env: dict[str, str]) -> None:
    for system in ("box", "box-open"):
        assert _series(tmp_path, driver_env, "--system", system, "--seed", "1")[0] == 0
    code, out, err = _series(tmp_path, driver_env, "--system", "box", "--seed", "2", "--division", "open")
    assert code == 2
    assert "one division per system; choose another --system for these open-division runs" in err
    assert "STARTING TIMING RUN" not in out
    assert _logs(tmp_path) == ["box-open/maskrcnn/result_0.txt", "box/maskrcnn/result_0.txt"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_automatic_name_of_an_open_series_says_open(tmp_path: Path, driver_env: dict[str, str]) -> None:
    env = {**driver_env, "PATH": "/usr/bin:/bin"}  # no nvidia-smi: a CPU system
    assert _series(tmp_path, env, "--system", "auto", "--seed", "1", "--division", "open")[0] == 0
    assert _series(tmp_path, env, "--system", "auto", "--seed", "2")[0] == 0
    assert _divisions(tmp_path) == {"bai-1xCPU": "closed", "bai-1xCPU-open": "open"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_each_run_draws_its_seed_unless_the_series_fixes_it(tmp_path: Path, driver_env: dict[str, str]) -> None:
    code, out, _ = _series(tmp_path, driver_env, "--runs", "3")
    seeds = [int(line.split(",")[2]) for line in out.splitlines() if line.startswith("RESULT,")]
    assert code == 0 and len(set(seeds)) == 3
    assert sorted(seeds) != list(range(min(seeds), min(seeds) + 3))  # not one draw counted on
    code, out, _ = _series(tmp_path, driver_env, "--runs", "2", "--seed", "40")
    assert [line.split(",")[2] for line in out.splitlines() if line.startswith("RESULT,")] == ["40", "41"]


def test_a_description_is_not_rewritten_to_another_division(tmp_path: Path) -> None:
    facts = {"division": "closed", "submitter": "org", "system_name": "box"}
    systems.write_fields(tmp_path, "box", facts)
    with pytest.raises(systems.DivisionConflictError, match=(
            r"box.json describes a closed-division system; an open-division run is not described there "
            r"\(one division per system: give it another system name, e.g. box-open")):
        systems.write_fields(tmp_path, "box", {**facts, "division": "open"})
    assert json.loads((tmp_path / "systems" / "box.json").read_text())["division"] == "closed"


def test_home_for_keeps_a_system_of_one_division_and_splits_off_another(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_log(results / "box" / "gnmt" / "result_0.txt", "gnmt", Run(5.0))  # closed, as generated logs are
    write_log(results / "box" / "maskrcnn" / "result_0.txt.partial", "maskrcnn", Run(5.0))
    assert systems.home_for(results, "box", "closed") == systems.Home("box")
    assert systems.home_for(results, "empty", "open") == systems.Home("empty")
    home = systems.home_for(results, "box", "open")
    assert home.system == "box-open"
    assert home.message == (f"{results / 'box'} holds closed-division gnmt, maskrcnn runs; these open-division "
                            "runs go under system box-open (one division per system)")
