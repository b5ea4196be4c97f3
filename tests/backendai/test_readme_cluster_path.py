"""The README's "Measure your Backend.AI cluster" path, its shell blocks run as they are written, against the
sandbox: its BACKEND_* instead of the example's, the test's Mask R-CNN image for the example's, the sample for
COCO, the sandbox's sizes for an 8-GPU node's, and one run of the series. A block that changes in a way the
substitutions no longer fit fails here, and so does one that no longer runs."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from common.backendai import client as bai_client
from common.backendai.sandbox import bootstrap
from common.backendai.sandbox.layout import SandboxLayout
from common.backendai.sandbox.lines import DEFAULT_LINE
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.docker, pytest.mark.registry,
              pytest.mark.training, pytest.mark.timeout(3600)]
# What each example value of the README becomes here; every one of them must be found.
SUBSTITUTIONS = {
    "--gpus-per-node 8": "--gpus-per-node 0", "--cpus-per-node 96": "--cpus-per-node 2",
    "--mem-per-node 900g": "--mem-per-node 6g", "--shmem 64g": "--shmem 1g", "--runs 5": "--runs 1 --seed 1",
    "--vfolder mlperf-coco": "--vfolder test-readme-coco --sample",
}


def readme_path() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Measure your Backend.AI cluster", 1)[1].split("\n## ", 1)[0]
    # the project's benchmark; a published implementation needs its submitter's image and GPUs
    section = section.split("**A published implementation", 1)[0]
    return "\n".join(re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M))


def script(image: str, results: Path) -> str:
    text = readme_path()
    assert re.search(r"^export BACKEND_ENDPOINT=\S+ BACKEND_ACCESS_KEY=\S+ BACKEND_SECRET_KEY=\S+\n", text, re.M)
    text = re.sub(r"^export BACKEND_ENDPOINT=.*\n", "", text, flags=re.M)
    assert re.search(r"^IMAGE=\S+$", text, re.M), text
    text = re.sub(r"^IMAGE=\S+$", f"IMAGE={image}", text, flags=re.M)
    for example, here in SUBSTITUTIONS.items():
        assert example in text, f"the README's path no longer has {example!r}"
        text = text.replace(example, here)
    # the results under the test's folder instead of the checkout's results/
    text = text.replace("invoke maskrcnn.run ", f"invoke maskrcnn.run --results-dir {results}/results ")
    for task in ("summary", "project"):
        text = re.sub(rf"^invoke results\.{task}$", f"invoke results.{task} --dir {results}/results", text,
                      flags=re.M)
    text = text.replace(" --out report", f" --dir {results}/results --out {results}/report")
    return f"set -ex\ncd {REPO_ROOT}\n{text}"


@pytest.mark.usefixtures("training_line")
def test_the_readmes_cluster_path_runs_on_the_sandbox(sandbox: SandboxLayout, benchmark_images: dict[str, str],
                                                      client_config: bai_client.APIConfig, tmp_path: Path) -> None:
    if sandbox.line.name != DEFAULT_LINE:
        pytest.skip(f"run on the default line ({DEFAULT_LINE}) only: every line runs the same commands elsewhere")
    env = {**os.environ, **bootstrap.client_environment(sandbox), "PYTHONPATH": str(REPO_ROOT)}
    results = tmp_path / "out"
    shell = script(benchmark_images["maskrcnn"], results)
    try:
        result = subprocess.run(["bash", "-c", shell], env=env, cwd=results.parent, capture_output=True, text=True,
                                timeout=3300, check=False)
    finally:
        if "test-readme-coco" in bai_client.vfolder_names(client_config):
            bai_client.delete_vfolder("test-readme-coco", config=client_config)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "launcher: world of 2 worker(s) on 2 node(s) (main1, sub1)" in output
    assert list((results / "results").glob("*/maskrcnn/probe_0.txt")), output[-3000:]
    assert list((results / "results").glob("*/maskrcnn/result_0.txt")), output[-3000:]
    assert (results / "report" / "index.html").exists()
