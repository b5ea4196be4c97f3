"""common.results.compare: a score measured against the published result on the same accelerators."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import compare, published
from tests.conftest import REPO_ROOT
from tests.results.generated import Run, write_submission


@pytest.mark.parametrize(("name", "key"), [
    ("NVIDIA H100 80GB HBM3", ("H100", "SXM")),  # what nvidia-smi says of an SXM5 card
    ("NVIDIA H100-SXM5-80GB", ("H100", "SXM")),
    ("NVIDIA H100-SXM-80GB", ("H100", "SXM")),
    ("NVIDIA H100 PCIe", ("H100", "PCIe")),
    ("NVIDIA H100-PCIe-80GB", ("H100", "PCIe")),
    ("NVIDIA H100 NVL", ("H100", "NVL")),
    ("NVIDIA GH200 480GB", ("GH200", "SXM")),
    ("NVIDIA A100-SXM4-40GB", ("A100", "SXM")),
    ("NVIDIA A100 80GB PCIe", ("A100", "PCIe")),
    ("AMD Instinct MI300X", ("MI300X", "")),
])
def test_models_compare_by_family_and_form(name: str, key: tuple[str, str]) -> None:
    assert compare.model_key(name) == key


def _peer(accelerators: str, minutes: float, round_: str = "v3.1", submitter: str = "S") -> published.Published:
    return published.Published("maskrcnn", round_, submitter, "sys", accelerators, minutes, "src")


PEERS = [_peer("8x NVIDIA H100-SXM5-80GB", 19.2), _peer("8x NVIDIA H100-SXM5-80GB", 19.9, submitter="T"),
         _peer("64x NVIDIA H100-SXM5-80GB", 4.3), _peer("8x NVIDIA H100-PCIe-80GB", 28.2),
         _peer("8x NVIDIA A100-SXM4-40GB", 82.2, "v0.7")]


def test_the_fastest_on_the_same_model_and_count_is_the_match() -> None:
    match = compare.best_match("maskrcnn", compare.Accelerators("NVIDIA H100 80GB HBM3", 8), PEERS)
    assert match.peer is PEERS[0] and match.same
    assert match.percent(21.33) == pytest.approx(100 * 19.2 / 21.33)
    assert match.words(21.33) == ("published 19.20 min: S sys, 8x NVIDIA H100-SXM5-80GB, v3.1 (the fastest published "
                                  "maskrcnn result on 8x H100 SXM); this score is 90.0% of its speed")


def test_without_the_same_count_the_nearest_is_taken_and_said() -> None:
    sixteen = compare.best_match("maskrcnn", compare.Accelerators("NVIDIA H100 80GB HBM3", 16), PEERS)
    assert sixteen.peer is PEERS[0] and not sixteen.same  # 8 is nearer to 16 than 64 is
    assert sixteen.why == "nearest: no published maskrcnn result on 16x H100 SXM; the same model at 8"
    other_model = compare.best_match("maskrcnn", compare.Accelerators("NVIDIA H200", 8), PEERS)
    assert not other_model.same and other_model.peer.accelerator_count == 8 and other_model.peer.minutes == 19.2
    assert other_model.why == "nearest: no published maskrcnn result on H200 SXM; the nearest count of another model"
    assert compare.best_match("gnmt", compare.Accelerators("NVIDIA H100", 8), PEERS) is None


def test_accelerators_come_from_the_system_description() -> None:
    described = {"number_of_nodes": "2", "accelerators_per_node": "8", "accelerator_model_name": "NVIDIA H100 PCIe"}
    assert compare.from_description(described) == compare.Accelerators("NVIDIA H100 PCIe", 16)
    assert compare.from_description({**described, "accelerators_per_node": "0"}) is None
    assert compare.from_description(None) is None


def test_the_project_figures_hold_v3x_8xh100_results_of_other_submitters() -> None:
    h100 = [p for p in published.load() if p.benchmark == "maskrcnn" and p.accelerator_count == 8
            and compare.model_key(p.accelerator_model or "")[0] == "H100" and p.submitter != "NVIDIA"]
    assert {p.round for p in h100} == {"v3.0", "v3.1"} and len(h100) >= 15
    assert all(p.source.startswith("https://github.com/mlcommons/training_results_v3.") for p in h100)
    assert {compare.model_key(p.accelerator_model)[1] for p in h100} == {"SXM", "PCIe"}


def test_summary_json_names_the_match_and_the_percentage(tmp_path: Path, driver_env: dict[str, str]) -> None:
    write_submission(tmp_path, "Org", {"box": {"maskrcnn": [Run(10), Run(11), Run(12), Run(9), Run(11)]}})
    proc = subprocess.run([sys.executable, "-m", "invoke", "results.summary", "--dir", str(tmp_path), "--json"],
                          cwd=REPO_ROOT, env=driver_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    match = result["published"]
    assert (match["submitter"], match["round"], match["minutes"], match["same_accelerators"]) == (
        "NVIDIA", "v0.7", 82.16, True)  # the generated system: 1 x 8 NVIDIA A100-SXM4-40GB
    assert match["percent_of_published"] == pytest.approx(100 * 82.16 / result["score_minutes"])
    assert result["score_minutes"] == pytest.approx(32 / 3)
