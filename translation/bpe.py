"""The shared BPE model, the BPE-encoded corpora and the vocabulary, with subword-nmt (pinned).

subword-nmt 0.3.8 learns the same codes and segments the same way as the reference's checkout
(48ba99e, June 2018): the releases since added only worker processes, tqdm and BPE-dropout
(off by default). The reference runs:
    cat train.tok.clean.de train.tok.clean.en | learn_bpe.py -s 32000 > bpe.32000
    apply_bpe.py -c bpe.32000 < f > f.bpe.32000
    cat train.tok.clean.bpe.32000.en train.tok.clean.bpe.32000.de | get_vocab.py | cut -f1 -d ' '
"""

from __future__ import annotations

import contextlib
import io
import itertools
from pathlib import Path

from common.atomic import atomic_path, write_text_atomic


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
    tokens = [line.split(" ", 1)[0] for line in ranked.getvalue().split("\n") if line]
    write_text_atomic(dst, "".join(t + "\n" for t in tokens))
    return len(tokens)
