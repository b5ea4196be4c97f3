"""`invoke results.report`: the page references only files that exist, each PNG opens, and a browser draws it."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from common.results import layout, systems
from common.results.logs import read_log
from tests.conftest import REPO_ROOT
from tests.harness.system import HarnessError, ensure_commands
from tests.results.generated import Run, system_description, write_folder
from tests.results.shaped import NVIDIA_8XH100, Timing, write_log

pytestmark = pytest.mark.slow

# What a headless Chromium needs to run here and in CI: no sandbox (root), no GPU, nothing on the network; no
# scroll bar in the picture.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values["src"] or "")
        elif tag == "a":
            self.links.append(values["href"] or "")


def write_results(root: Path) -> Path:
    """results/ of one system: Mask R-CNN with a run that missed the target, GNMT with too few runs."""
    results = root / "results"
    logs = write_folder(results / "box" / "maskrcnn", "maskrcnn",
                        [Run(21.5), Run(19.8), Run(23.0, converged=False), Run(20.4), Run(22.1)], noise_lines=2)
    write_folder(results / "box" / "gnmt", "gnmt", [Run(9.5), Run(8.7), Run(9.1)])
    systems.describe_local_run(layout.submission_root(results), "box", read_log(logs[0]))
    return results


def draw(results: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "invoke"), "results.report", "--dir", str(results),
                           "--out", str(out), *extra], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def screenshot(page: Path, shot: Path, profile: Path, *, width: int = 1200, height: int = 2400) -> None:
    try:
        ensure_commands("chromium")
    except HarnessError as error:
        pytest.skip(f"no chromium to draw the page with ({error})")
    subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180, check=True)


def test_the_report_is_complete_and_a_browser_draws_it(tmp_path: Path, driver_env: dict[str, str]) -> None:
    results = write_results(tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text("results:\n  - {benchmark: maskrcnn, round: ours, submitter: Us, system: lab, "
                    "accelerators: 2x H100, minutes: 30, source: our notebook}\n")
    out = tmp_path / "report"
    proc = draw(results, out, driver_env, "--published", str(mine))
    assert proc.returncode == 0, proc.stderr
    page = out / "index.html"
    assert proc.stdout.strip() == f"report: {page}"

    html = page.read_text()
    refs = _References()
    refs.feed(html)
    local = [r for r in refs.images + refs.links if not r.startswith(("https://", "http://", "#"))]
    assert local == refs.images and all((out / r).is_file() for r in local)
    anchors = [r[1:] for r in refs.links if r.startswith("#")]
    assert all(f'id="{a}"' in html for a in anchors) and len(anchors) == 2
    assert sorted(refs.images) == sorted(f"box-{b}-{kind}.png" for b in ("gnmt", "maskrcnn")
                                         for kind in ("comparison", "convergence", "projection", "throughput",
                                                      "time-to-train"))
    for name in refs.images:
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 200
    assert "our notebook" in html and "82.16" in html  # the user's entry beside the project's published ones
    assert "provisional: 3 of the 10 runs MLPerf requires" in html
    assert "dropped: not converged" in html

    shot = tmp_path / "page.png"
    screenshot(page, shot, tmp_path / "chromium-profile")
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert grey.size == (1200, 2400)
        assert ImageStat.Stat(grey).stddev[0] > 20  # text, tables and plots, not one flat colour
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def test_bad_published_data_stops_the_report(tmp_path: Path, driver_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"results": [{"benchmark": "gnmt"}]}))
    proc = draw(write_results(tmp_path), tmp_path / "report", driver_env, "--published", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"results: {bad}: results[0]: no round")
    assert not (tmp_path / "report").exists()


def write_scaling_series(root: Path) -> Path:
    """Mask R-CNN on 1, 2 and 4 nodes of 8 H100s (described as nvidia-smi names them), five runs each."""
    results = root / "results"
    for nodes, slower in ((1, 1.0), (2, 1.1), (4, 1.25)):
        system = f"bai-{nodes}x8xH100"
        timing = Timing(*(t * slower / nodes for t in (NVIDIA_8XH100.first_epoch, NVIDIA_8XH100.second_epoch,
                                                       NVIDIA_8XH100.epoch)), eval=NVIDIA_8XH100.eval)
        for index, epochs in enumerate([14, 13, 14, 15, 14]):
            write_log(results / system / "maskrcnn" / f"result_{index}.txt", timing, epochs=epochs)
        described = {**system_description("Backend.AI", system), "number_of_nodes": str(nodes),
                     "accelerator_model_name": "NVIDIA H100 80GB HBM3"}
        (root / "systems").mkdir(exist_ok=True)
        (root / "systems" / f"{system}.json").write_text(json.dumps(described))
    return results


def test_scaling_and_comparison_plots_fit_a_laptop_screen(tmp_path: Path, driver_env: dict[str, str]) -> None:
    out = tmp_path / "report"
    proc = draw(write_scaling_series(tmp_path), out, driver_env)
    assert proc.returncode == 0, proc.stderr
    html = (out / "index.html").read_text()
    assert '<h2 id="scaling">Scaling across nodes</h2>' in html
    assert "maskrcnn, 8x NVIDIA H100 80GB HBM3 per node" in html
    assert (out / "scaling-maskrcnn-8x-NVIDIA-H100-80GB-HBM3-per-node.png").is_file()
    # one node: the published 8x H100 SXM results; 2 and 4 nodes: the nearest, said so
    assert "(the fastest published maskrcnn result on 8x H100 SXM); this score is " in html
    assert "nearest: no published maskrcnn result on 16x H100 SXM" in html
    shot = tmp_path / "page.png"
    screenshot(out / "index.html", shot, tmp_path / "chromium-profile", width=1366, height=3000)
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert grey.size == (1366, 3000)
        margin = grey.crop((1250, 0, 1366, 3000))
        assert margin.getextrema()[0] > 240, "something is drawn past the page's width: it does not fit a laptop"
        assert ImageStat.Stat(grey.crop((0, 0, 1250, 3000))).stddev[0] > 20
