"""The project on Python 3.13, in a Debian 13 container (Debian 13's python3 is 3.13): the client installs
(`.[bai]`, no SDK pinned to one Python) and its fast tests pass there, and the README's first command, verbatim,
installs everything and runs the sample to its RESULT line and the checker's PASSED.

pip's downloads (torch and its CUDA libraries for 3.13, about 3 GB from PyPI) are kept in PIP_CACHE between
runs, so only a machine's first run downloads them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from common.backendai.sandbox.container import CA_BUNDLE
from tests.conftest import REPO_ROOT
from tests.harness.python313 import ensure_python313_image

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(3600)]
PIP_CACHE = Path.home() / ".cache" / "mlperf-bai-python313-pip"
FAST_CLIENT_TESTS = ("tests/backendai/test_client_rules.py tests/backendai/test_output.py "
                     "tests/backendai/test_vfolder_choice.py tests/mlperf/test_launcher_network.py")
SCRIPT = f"""set -e
cp -r /src /work && cd /work && rm -rf .venv .nox build *.egg-info
python3 --version
python3 -m venv /venv
start=$(date +%s)
/venv/bin/pip install -q --disable-pip-version-check '.[bai]'
echo "install of .[bai]: $(( $(date +%s) - start )) s"
/venv/bin/pip install -q --disable-pip-version-check pytest pytest-timeout hypothesis
/venv/bin/python -c "from common.backendai import client, api; print('client imports on', __import__('sys').version)"
/venv/bin/python -m pytest -q -p no:cacheprovider -m 'not slow' {FAST_CLIENT_TESTS}
"""


def test_the_client_installs_and_its_fast_tests_pass_on_python_3_13() -> None:
    image = ensure_python313_image()
    result = subprocess.run(["docker", "run", "--rm", "--network", "host", "-e", f"PIP_CERT={CA_BUNDLE}",
                             "-v", f"{REPO_ROOT}:/src:ro", image, "sh", "-c", SCRIPT],
                            capture_output=True, text=True, timeout=1800, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "Python 3.13" in output and "client imports on 3.13" in output
    assert " passed" in output and " failed" not in output, output[-3000:]


def readme_command_1() -> str:
    """The first shell block of the README's two commands, as a new user copies it."""
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text.split("## The two commands", 1)[1], re.S)
    return blocks[0].strip()


@pytest.mark.training
def test_the_readme_command_1_runs_verbatim_on_python_3_13() -> None:
    command = readme_command_1()
    assert command.startswith("python3 -m venv .venv") and "invoke maskrcnn.run --sample" in command
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    script = (f"set -e\ncp -r /src /work && cd /work && rm -rf .venv .nox build *.egg-info data results\n"
              f"python3 --version\n{command}\n")
    result = subprocess.run(["docker", "run", "--rm", "--network", "host", "-e", f"PIP_CERT={CA_BUNDLE}",
                             "-e", "PIP_CACHE_DIR=/pip-cache", "-v", f"{PIP_CACHE}:/pip-cache",
                             "-v", f"{REPO_ROOT}:/src:ro",
                             ensure_python313_image(), "bash", "-c", script],
                            capture_output=True, text=True, timeout=3300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Python 3.13" in output
    assert re.search(r"^RESULT,OBJECT_DETECTION,1,\d+,", output, re.M), output[-4000:]
    assert "compliance (3.1.0): PASSED" in output, output[-4000:]
