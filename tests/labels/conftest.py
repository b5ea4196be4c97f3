import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def invoke():
    """Run `invoke ARGS...` from the project root, as a user would."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    return run
