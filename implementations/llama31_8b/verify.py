"""Check Llama 3.1 8B's data against the publisher's md5 lists kept beside it; exits non-zero naming each problem.

    python -m implementations.llama31_8b.verify --data-dir /data [--full]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from common.datasets.steps import add_verify_args, report, run_cli
from implementations import bundles
from implementations.llama31_8b.download import MANIFEST


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m implementations.llama31_8b.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verify_args(p, MANIFEST)
    return p


def run(args: argparse.Namespace) -> int:
    if args.sample:
        print("error: llama31_8b has no generated sample", file=sys.stderr)
        return 2
    problems, checked = bundles.problems(bundles.load_bundles(args.manifest), args.data_dir, full=args.full,
                                         jobs=args.jobs)
    return report(problems, checked, f"Llama 3.1 8B data in {args.data_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
