"""Download Llama 3.1 8B's preprocessed C4 dataset and tokenizer as MLCommons publishes them (resumable, verified).

    python -m implementations.llama31_8b.download --data-dir /data [--mirror URL | --from DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from common.datasets.steps import add_download_args, run_cli
from implementations import bundles

MANIFEST = Path(__file__).with_name("dataset.yaml")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m implementations.llama31_8b.download", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_download_args(p, MANIFEST)
    return p


def run(args: argparse.Namespace) -> int:
    if args.sample:
        print("error: llama31_8b has no generated sample; its data is MLCommons' preprocessed C4 (~85 GB)",
              file=sys.stderr)
        return 2
    bundles.download(bundles.load_bundles(args.manifest), args.data_dir, mirror=args.mirror,
                     source_dir=args.source_dir, jobs=args.jobs, retries=args.retries)
    print(f"Llama 3.1 8B data in {args.data_dir}/8b (tokenizer in {args.data_dir}/8b/tokenizer)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
