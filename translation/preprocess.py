"""WMT16 en-de preprocessing with the reference's bytes (mlcommons/training gnmt `download_dataset.sh`).

The steps, in the reference's order:
- assemble: the training corpora concatenated (`cat`), the SGM test sets as text (translation.sgm);
- tokenise: Moses tokenisation of every corpus (translation.tokenizer);
- clean: clean-corpus-n 1-80 on every corpus, newstest2015+2016 as the dev set, the latin-1 filter
  on train and dev (translation.clean);
- bpe-learn, bpe-apply, vocab: the shared 32k BPE model, the encoded corpora, the vocabulary
  (translation.bpe);
- token-cache: the training pairs and the test source as token ids (translation.token_cache), which
  the trainer maps instead of encoding text on the clock.

Each step records what it wrote (translation.steps): a rerun skips finished steps, and `verify`
names the step whose output changed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_path
from translation import bpe, token_cache
from translation.clean import clean_corpus, latin1_filter
from translation.layout import DEV_SETS, LANGS, TEST_SETS, Lang, Wmt16Layout
from translation.sgm import sgm_segments
from translation.steps import PreprocessError, Step, run_steps
from translation.tokenizer import tokenize_files


@dataclass(frozen=True)
class RawSources:
    """Extracted inputs: training files per language (concatenated in order) and SGM test sets."""

    train: dict[Lang, list[Path]]
    sgm: dict[tuple[str, Lang], Path]


# --- the pipeline ---------------------------------------------------------------------------------


def concatenate(parts: Iterable[Path], dst: Path) -> None:
    with atomic_path(dst) as tmp, tmp.open("wb") as out:
        for part in parts:
            if not part.is_file():
                raise PreprocessError(f"missing input {part}")
            with part.open("rb") as f:
                shutil.copyfileobj(f, out)


def pipeline(layout: Wmt16Layout, sources: RawSources, merges: int = 32000,
             workers: int | None = None) -> list[Step]:
    """The steps from extracted archives to the files in `layout`."""
    workers = workers or os.cpu_count() or 1
    root = layout.root
    bases = ("train", *TEST_SETS)

    def raw(base: str, lang: Lang) -> Path:
        return root / f"{base}.{lang}"

    def tok(base: str, lang: Lang) -> Path:
        return root / f"{base}.tok.{lang}"

    def clean(base: str, lang: Lang) -> Path:
        return root / f"{base}.tok.clean.{lang}"

    def assemble() -> None:
        for lang in LANGS:
            concatenate(sources.train[lang], raw("train", lang))
        for (name, lang), sgm in sources.sgm.items():
            if not sgm.is_file():
                raise PreprocessError(f"missing SGM file {sgm}")
            with atomic_path(raw(name, lang)) as tmp, tmp.open("wb") as out:
                out.writelines(segment + b"\n" for segment in sgm_segments(sgm))

    def tokenise() -> None:
        tokenize_files([(raw(b, lang), tok(b, lang), lang) for b in bases for lang in LANGS], workers)

    def clean_all() -> None:
        """clean-corpus-n on every set, the dev set, then the latin-1 filter on train and dev."""
        for b in bases:
            clean_corpus({lang: tok(b, lang) for lang in LANGS}, {lang: clean(b, lang) for lang in LANGS})
        for lang in LANGS:
            concatenate([clean(b, lang) for b in DEV_SETS], clean("newstest_dev", lang))
        for b in ("train", "newstest_dev"):
            paths = {lang: clean(b, lang) for lang in LANGS}
            latin1_filter(paths, paths)

    def bpe_learn() -> None:
        corpus = root / "train.tok.clean.de-en"
        concatenate([clean("train", "de"), clean("train", "en")], corpus)
        try:
            bpe.learn_bpe(corpus, layout.bpe_codes, merges, workers)
        finally:
            corpus.unlink(missing_ok=True)

    def bpe_apply() -> None:
        bpe.apply_bpe(layout.bpe_codes, bpe_jobs, workers)

    def vocab() -> None:
        bpe.build_vocab([layout.train("en"), layout.train("de")], layout.vocab)

    def cache() -> None:
        token_cache.write_cache(layout)

    bpe_jobs = [
        *((clean("train", lang), layout.train(lang)) for lang in LANGS),
        *((clean("newstest_dev", lang), layout.dev(lang)) for lang in LANGS),
        *((tok("newstest2014", lang), layout.test_bpe(lang)) for lang in LANGS),
    ]
    return [
        Step("assemble", [raw(b, lang) for b in bases for lang in LANGS], assemble),
        Step("tokenise", [tok(b, lang) for b in bases for lang in LANGS], tokenise),
        Step("clean", [clean(b, lang) for b in (*bases, "newstest_dev") for lang in LANGS], clean_all),
        Step("bpe-learn", [layout.bpe_codes], bpe_learn),
        Step("bpe-apply", [dst for _, dst in bpe_jobs], bpe_apply),
        Step("vocab", [layout.vocab], vocab),
        Step("token-cache", token_cache.cache_files(layout), cache),
    ]


def preprocess(layout: Wmt16Layout, sources: RawSources, merges: int = 32000,
               workers: int | None = None) -> list[Step]:
    """Produce every file the trainer reads; returns the steps with which of them ran."""
    return run_steps(pipeline(layout, sources, merges, workers), layout)
