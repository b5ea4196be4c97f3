"""`python -m tests.harness up`: start what the tests need (used by .ci/run)."""

from __future__ import annotations

import sys

from .base_image import ensure_base_image
from .docker_engine import ensure_docker_engine
from .registry import ensure_default_registry


def main(argv: list[str]) -> int:
    if argv != ["up"]:
        print("usage: python -m tests.harness up", file=sys.stderr)
        return 2
    ensure_docker_engine()
    print(f"docker engine: ready; registry: {ensure_default_registry()}")
    print(f"base image: {ensure_base_image()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
