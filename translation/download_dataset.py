"""Download, extract and preprocess WMT16 en-de the way the GNMT reference does, or build the sample.

    python -m translation.download_dataset --data-dir /data [--mirror URL | --from DIR]
    python -m translation.download_dataset --data-dir /tmp/sample --sample

Preprocessing steps that already completed are skipped on a rerun.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import extras
from common.datasets.manifest import Manifest, ManifestError, load_manifest
from common.datasets.steps import add_download_args, download, extract_downloads, run_cli
from translation.layout import LANGS, TEST_SETS, Wmt16Layout
from translation.steps import PreprocessError

if TYPE_CHECKING:
    from translation.preprocess import RawSources

MANIFEST = Path(__file__).with_name("dataset_manifest.yaml")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m translation.download_dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_download_args(p, MANIFEST)
    p.add_argument("--workers", type=int, default=None, help="processes for tokenisation and BPE (default: all cores)")
    return p


def raw_sources(manifest: Manifest, data_dir: Path) -> RawSources:
    """The manifest's `sources` section as paths under `data_dir`."""
    from translation.preprocess import RawSources  # noqa: PLC0415 - the preprocessing needs the train extra

    try:
        src: dict[str, Any] = manifest.extra["sources"]
        train = {lang: [data_dir / p for p in src["train"][lang]] for lang in LANGS}
        sgm = {(name, lang): data_dir / src["sgm"][name][lang] for name in TEST_SETS for lang in LANGS}
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"{manifest.source}: sources: missing or malformed entry {exc}") from exc
    return RawSources(train=train, sgm=sgm)


def run(args: argparse.Namespace) -> int:
    extras.require("train", "WMT16 preprocessing", ("sacremoses", "subword_nmt", "regex", "numpy"))
    from translation.preprocess import preprocess  # noqa: PLC0415 - needs the extra checked above

    if args.sample:
        from translation.sample import build_sample  # noqa: PLC0415 - only the sample needs the grammar

        build_sample(args.data_dir, seed=args.seed, workers=args.workers)
        print(f"sample WMT16 en-de dataset written to {Wmt16Layout(args.data_dir).root}")
        return 0
    manifest = load_manifest(args.manifest)
    download(manifest, args.data_dir, args)
    extract_downloads(manifest, args.data_dir)
    preprocess(Wmt16Layout(args.data_dir), raw_sources(manifest, args.data_dir), workers=args.workers)
    print(f"WMT16 en-de preprocessed into {Wmt16Layout(args.data_dir).root}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, parser(), argv, errors=(PreprocessError,))


if __name__ == "__main__":
    raise SystemExit(main())
