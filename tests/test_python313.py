"""The project on Python 3.13, in a Debian 13 container: the client installs (`.[bai]`, no SDK pinned to one
Python) and its fast tests pass there."""

from __future__ import annotations

import subprocess

import pytest

from common.backendai.sandbox.container import CA_BUNDLE
from tests.conftest import REPO_ROOT
from tests.harness.python313 import ensure_python313_image

pytestmark = [pytest.mark.slow, pytest.mark.docker]
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
