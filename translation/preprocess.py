"""WMT16 en-de preprocessing with the reference's effect (mlcommons/training gnmt download_dataset.sh).

SGM to text, Moses tokenisation (sacremoses, default escaping as tokenizer.perl), clean-corpus 1-80
with the length-ratio filter of 9, the latin-1 filter of filter_dataset.py, a shared BPE model
(subword-nmt), the BPE-encoded corpora and the vocabulary, under the names the trainer reads.

Each step records its outputs (size and mtime) in `.steps/<name>.json` once they are complete; a
rerun skips a step whose outputs are unchanged, and reruns everything after the first step it runs.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import os
import re
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from common.atomic import atomic_path, write_text_atomic
from translation.layout import LANGS, Lang, Wmt16Layout

log = logging.getLogger(__name__)

MIN_TOKENS = 1
MAX_TOKENS = 80
MAX_RATIO = 9.0
TEST_SETS = ("newstest2014", "newstest2015", "newstest2016")
DEV_SETS = ("newstest2015", "newstest2016")
_CHUNK_LINES = 2000


class PreprocessError(Exception):
    """An input is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class RawSources:
    """Extracted inputs: training files per language (concatenated in order) and SGM test sets."""

    train: dict[Lang, list[Path]]
    sgm: dict[tuple[str, Lang], Path]


# --- SGM ------------------------------------------------------------------------------------------

_SEG_OPEN = re.compile(r"<seg[^>]+>\s*$", re.IGNORECASE)
_SEG = re.compile(r"<seg[^>]+>\s*(.*?)\s*</seg>", re.IGNORECASE)
_SEG_START = re.compile(r"<seg[^>]+>", re.IGNORECASE)


def sgm_lines(path: Path) -> Iterator[str]:
    """The <seg> contents of an SGM file, whitespace-normalised (input-from-sgm.perl)."""
    with path.open(encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            while _SEG_OPEN.search(line):
                nxt = f.readline()
                if not nxt:
                    break
                line += nxt.rstrip("\n")
            match = _SEG.search(line)
            if match:
                yield " ".join(match.group(1).split())
            elif _SEG_START.search(line):
                raise PreprocessError(f"{path}: unterminated <seg> in line {line[:80]!r}")


# --- tokenisation ---------------------------------------------------------------------------------

_tokenizers: dict[str, object] = {}


def _tokenize_chunk(job: tuple[str, list[str]]) -> list[str]:
    from sacremoses import MosesTokenizer  # noqa: PLC0415 - loaded once per worker process

    lang, lines = job
    tok = _tokenizers.get(lang)
    if tok is None:
        tok = _tokenizers[lang] = MosesTokenizer(lang=lang)
    return [tok.tokenize(line, escape=True, return_str=True) for line in lines]


def _chunks(path: Path, lang: str) -> Iterator[tuple[str, list[str]]]:
    with path.open(encoding="utf-8") as f:
        batch: list[str] = []
        for line in f:
            batch.append(line.rstrip("\n"))
            if len(batch) == _CHUNK_LINES:
                yield lang, batch
                batch = []
        if batch:
            yield lang, batch


def _bounded_map(pool: ProcessPoolExecutor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """pool.map that keeps at most `window` items in flight, so a large file is never all in memory."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def tokenize_files(jobs: list[tuple[Path, Path, Lang]], workers: int) -> None:
    """Tokenise (src, dst, lang) jobs; chunks of lines go to `workers` processes, order kept."""
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for src, dst, lang in jobs:
            chunks = _chunks(src, lang)
            results = _bounded_map(pool, _tokenize_chunk, chunks, 4 * workers) if pool else map(
                _tokenize_chunk, chunks)
            with atomic_path(dst) as tmp, tmp.open("w", encoding="utf-8") as out:
                for lines in results:
                    out.writelines(line + "\n" for line in lines)
    finally:
        if pool:
            pool.shutdown()


# --- cleaning and filtering -----------------------------------------------------------------------


def _normalise(line: str) -> str:
    return " ".join(line.replace("|", "").split())


def keep_pair(a: str, b: str) -> bool:
    """clean-corpus-n.perl's test with min 1, max 80 and ratio 9 on normalised lines."""
    na, nb = len(a.split(" ")) if a else 0, len(b.split(" ")) if b else 0
    if not (MIN_TOKENS <= na <= MAX_TOKENS and MIN_TOKENS <= nb <= MAX_TOKENS):
        return False
    return na / nb <= MAX_RATIO and nb / na <= MAX_RATIO


def _pairs(a: Path, b: Path) -> Iterator[tuple[str, str]]:
    with a.open(encoding="utf-8") as fa, b.open(encoding="utf-8") as fb:
        for la, lb in zip(fa, fb, strict=True):
            yield la.rstrip("\n"), lb.rstrip("\n")


def _write_pairs(pairs: Iterable[tuple[str, str]], a: Path, b: Path) -> int:
    kept = 0
    with (
        atomic_path(a) as ta,
        atomic_path(b) as tb,
        ta.open("w", encoding="utf-8") as fa,
        tb.open("w", encoding="utf-8") as fb,
    ):
        for la, lb in pairs:
            fa.write(la + "\n")
            fb.write(lb + "\n")
            kept += 1
    return kept


def clean_corpus(src: dict[Lang, Path], dst: dict[Lang, Path]) -> int:
    """Keep sentence pairs of 1-80 tokens with a length ratio of at most 9; returns pairs kept."""
    try:
        normalised = ((_normalise(a), _normalise(b)) for a, b in _pairs(src["de"], src["en"]))
        return _write_pairs(((a, b) for a, b in normalised if keep_pair(a, b)), dst["de"], dst["en"])
    except ValueError as exc:
        raise PreprocessError(f"{src['de']} and {src['en']} differ in line count") from exc


def is_latin1(line: str) -> bool:
    try:
        line.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def latin1_filter(src: dict[Lang, Path], dst: dict[Lang, Path]) -> int:
    """Drop pairs that latin-1 cannot encode (filter_dataset.py); returns pairs kept."""
    pairs = ((a, b) for a, b in _pairs(src["en"], src["de"]) if is_latin1(a) and is_latin1(b))
    return _write_pairs(pairs, dst["en"], dst["de"])


def concatenate(parts: Iterable[Path], dst: Path) -> None:
    with atomic_path(dst) as tmp, tmp.open("wb") as out:
        for part in parts:
            if not part.is_file():
                raise PreprocessError(f"missing input {part}")
            with part.open("rb") as f:
                shutil.copyfileobj(f, out)


# --- BPE ------------------------------------------------------------------------------------------


def learn_bpe(corpus: Path, codes: Path, merges: int, workers: int) -> None:
    from subword_nmt.learn_bpe import learn_bpe as _learn  # noqa: PLC0415 - subword-nmt is slow to import

    with (
        corpus.open(encoding="utf-8") as f,
        atomic_path(codes) as tmp,
        tmp.open("w", encoding="utf-8") as out,
    ):
        _learn(f, out, merges, num_workers=workers)


def apply_bpe(codes: Path, jobs: list[tuple[Path, Path]], workers: int) -> None:
    from subword_nmt.apply_bpe import BPE  # noqa: PLC0415

    with codes.open(encoding="utf-8") as f:
        bpe = BPE(f)
    for src, dst in jobs:
        with atomic_path(dst) as tmp, tmp.open("w", encoding="utf-8") as out:
            bpe.process_lines(str(src), out, num_workers=workers)


def build_vocab(inputs: list[Path], dst: Path) -> int:
    """Tokens of the BPE'd training data, most frequent first, ties in order of first appearance.

    One get_vocab pass over the inputs in sequence, as `cat en de | get_vocab.py | cut -f1 -d ' '`.
    """
    from subword_nmt.get_vocab import get_vocab  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(p.open(encoding="utf-8")) for p in inputs]
        ranked = io.StringIO()
        get_vocab(itertools.chain(*files), ranked)
    tokens = [line.split(" ", 1)[0] for line in ranked.getvalue().splitlines()]
    write_text_atomic(dst, "".join(t + "\n" for t in tokens))
    return len(tokens)


# --- the pipeline ---------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    outputs: list[Path]
    action: Callable[[], object]
    ran: bool = field(default=False)


def _signature(paths: list[Path]) -> list[list[object]]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _complete(marker: Path, step: Step) -> bool:
    if not marker.is_file() or not all(p.is_file() for p in step.outputs):
        return False
    return json.loads(marker.read_text()) == _signature(step.outputs)


def run_steps(steps: list[Step], state_dir: Path) -> list[Step]:
    """Run steps in order, skipping complete ones until the first that must run."""
    state_dir.mkdir(parents=True, exist_ok=True)
    forced = False
    for step in steps:
        marker = state_dir / f"{step.name}.json"
        if not forced and _complete(marker, step):
            log.info("skip %s: outputs complete", step.name)
            continue
        forced = True
        log.info("run %s", step.name)
        marker.unlink(missing_ok=True)
        step.action()
        write_text_atomic(marker, json.dumps(_signature(step.outputs)))
        step.ran = True
    return steps


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
            write_text_atomic(raw(name, lang), "".join(line + "\n" for line in sgm_lines(sgm)))

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
            learn_bpe(corpus, layout.bpe_codes, merges, workers)
        finally:
            corpus.unlink(missing_ok=True)

    def bpe_apply() -> None:
        apply_bpe(layout.bpe_codes, bpe_jobs, workers)

    def vocab() -> None:
        build_vocab([layout.train("en"), layout.train("de")], layout.vocab)

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
    ]


def preprocess(layout: Wmt16Layout, sources: RawSources, merges: int = 32000,
               workers: int | None = None) -> list[Step]:
    """Produce every file the trainer reads; returns the steps with which of them ran."""
    return run_steps(pipeline(layout, sources, merges, workers), layout.root / ".steps")
