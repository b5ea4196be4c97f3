"""Token ids of the corpora the trainer reads, written once by `prepare` and only mapped after run_start.

Each corpus side is one flat array of vocabulary ids and one array of offsets: sentence i is
`ids[offsets[i]:offsets[i + 1]]` (no BOS/EOS). The arrays live in `wmt16_de_en/token_cache/` as raw
little-endian files; `cache.json` gives their dtype and length, the unknown-token count of each side,
and the size and md5 of the BPE file and of the vocabulary each side was encoded from, so that a
cache which no longer matches its sources is recognised (by size here, by md5 in `verify`).

Encoding is the reference's `Tokenizer.segment` without BOS/EOS: split on whitespace, look each
token up, `<unk>` when absent. Where the cache is missing or stale, `load` encodes the text files in
memory with the same code (on the clock), and says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.atomic import atomic_path, write_text_atomic
from translation.gnmt.data.vocabulary import UNK, Vocabulary
from translation.layout import SRC_LANG, TGT_LANG, Lang, Wmt16Layout
from translation.steps import PreprocessError, md5_of

if TYPE_CHECKING:
    import numpy as np

CACHE_VERSION = 1
MANIFEST = "cache.json"
_CHUNK = 1 << 20
# (corpus, language) pairs the trainer reads: the training pairs and the test source.
SIDES: tuple[tuple[str, Lang], ...] = (("train", SRC_LANG), ("train", TGT_LANG), ("test", SRC_LANG))


class CacheError(PreprocessError):
    """A cache file is missing, truncated or of another format; the message names it."""


@dataclass(frozen=True)
class Side:
    """One corpus side: flat ids, sentence offsets and how many tokens were not in the vocabulary."""

    ids: np.ndarray
    offsets: np.ndarray
    unknown: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per sentence, BOS and EOS not counted."""
        return self.offsets[1:] - self.offsets[:-1]

    def sentence(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]


def id_dtype(vocab_size: int) -> np.dtype:
    import numpy as np  # noqa: PLC0415 - numpy comes with the train extra; verify reads manifests only

    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def encode_lines(lines: Iterable[str], vocab: Vocabulary) -> Side:
    import numpy as np  # noqa: PLC0415

    index, dtype = vocab.index, id_dtype(len(vocab))
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    pending: list[int] = []
    for line in lines:
        ids = [index.get(word, UNK) for word in line.split()]
        pending.extend(ids)
        lengths.append(len(ids))
        if len(pending) >= _CHUNK:
            chunks.append(np.array(pending, dtype=dtype))
            pending = []
    chunks.append(np.array(pending, dtype=dtype))
    ids = np.concatenate(chunks)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Side(ids, offsets, int(np.count_nonzero(ids == UNK)))


def encode_file(path: Path, vocab: Vocabulary) -> Side:
    with path.open(encoding="utf-8", newline="\n") as lines:
        return encode_lines((line.removesuffix("\n") for line in lines), vocab)


def _source(layout: Wmt16Layout, corpus: str, lang: Lang) -> Path:
    return layout.train(lang) if corpus == "train" else layout.test_bpe(lang)


def _file_record(path: Path) -> dict[str, object]:
    return {"name": path.name, "size": path.stat().st_size, "md5": md5_of(path)}


def _array_paths(layout: Wmt16Layout, corpus: str, lang: Lang) -> tuple[Path, Path]:
    base = layout.token_cache / f"{corpus}.{lang}"
    return base.with_name(base.name + ".ids"), base.with_name(base.name + ".offsets")


def cache_files(layout: Wmt16Layout) -> list[Path]:
    """Every file `write_cache` writes."""
    arrays = [path for corpus, lang in SIDES for path in _array_paths(layout, corpus, lang)]
    return [*arrays, layout.token_cache / MANIFEST]


def write_cache(layout: Wmt16Layout) -> None:
    """Encode the training pairs and the test source with the vocabulary."""
    vocab = Vocabulary.load(layout.vocab)
    manifest: dict[str, object] = {"version": CACHE_VERSION, "vocab": _file_record(layout.vocab), "sides": {}}
    for corpus, lang in SIDES:
        source = _source(layout, corpus, lang)
        side = encode_file(source, vocab)
        ids_path, offsets_path = _array_paths(layout, corpus, lang)
        for path, array in ((ids_path, side.ids), (offsets_path, side.offsets)):
            with atomic_path(path) as tmp:
                array.tofile(tmp)
        manifest["sides"][f"{corpus}.{lang}"] = {
            "source": _file_record(source), "dtype": side.ids.dtype.str, "tokens": len(side.ids),
            "sentences": len(side), "unknown": side.unknown}
    write_text_atomic(layout.token_cache / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def read_manifest(layout: Wmt16Layout) -> dict | None:
    path = layout.token_cache / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CacheError(f"{path}: not a token cache manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != CACHE_VERSION:
        raise CacheError(f"{path}: token cache version {manifest.get('version')!r}, expected {CACHE_VERSION}")
    return manifest


def stale_reason(layout: Wmt16Layout, manifest: dict, *, by_digest: bool) -> str | None:
    """Why the cache no longer matches its sources (sizes, or md5s with `by_digest`), or None."""
    checks = [(layout.vocab, manifest["vocab"])]
    checks += [(_source(layout, c, lang), manifest["sides"][f"{c}.{lang}"]["source"]) for c, lang in SIDES]
    for path, record in checks:
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != record["size"]:
            return f"{path} has {path.stat().st_size} bytes, the cache was made from {record['size']}"
        if (by_digest or path == layout.vocab) and md5_of(path) != record["md5"]:
            return f"{path} has md5 {md5_of(path)}, the cache was made from {record['md5']}"
    return None


def _map(layout: Wmt16Layout, corpus: str, lang: Lang, record: dict) -> Side:
    import numpy as np  # noqa: PLC0415

    ids_path, offsets_path = _array_paths(layout, corpus, lang)
    dtype, tokens, sentences = np.dtype(record["dtype"]), record["tokens"], record["sentences"]
    for path, count, item in ((ids_path, tokens, dtype.itemsize), (offsets_path, sentences + 1, 8)):
        if not path.is_file() or path.stat().st_size != count * item:
            raise CacheError(f"{path}: expected {count * item} bytes of {record['dtype']} ids / offsets")
    ids = np.memmap(ids_path, dtype=dtype, mode="r", shape=(tokens,)) if tokens else np.zeros(0, dtype)
    offsets = np.memmap(offsets_path, dtype="<i8", mode="r", shape=(sentences + 1,))
    return Side(ids, offsets, record["unknown"])


@dataclass(frozen=True)
class Corpora:
    """The trainer's inputs as ids; `source` says whether they came from the cache or the text files."""

    train_src: Side
    train_tgt: Side
    test_src: Side
    source: str


def _mapped(layout: Wmt16Layout) -> tuple[list[Side] | None, str]:
    try:
        manifest = read_manifest(layout)
        if manifest is None:
            return None, "no token cache (prepare writes it)"
        if reason := stale_reason(layout, manifest, by_digest=False):
            return None, f"stale token cache: {reason}"
        return [_map(layout, c, lang, manifest["sides"][f"{c}.{lang}"]) for c, lang in SIDES], ""
    except (CacheError, KeyError, TypeError) as exc:
        return None, f"unusable token cache: {exc}"


def load(layout: Wmt16Layout, vocab: Vocabulary) -> Corpora:
    """Map the cache; when it is missing or stale, encode the BPE text files instead (and say why)."""
    sides, reason = _mapped(layout)
    if sides is not None:
        return Corpora(*sides, source=f"token cache {layout.token_cache}")
    sides = [encode_file(_source(layout, c, lang), vocab) for c, lang in SIDES]
    return Corpora(*sides, source=f"the BPE text files, encoded now ({reason})")
