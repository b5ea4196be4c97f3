"""The shared BPE vocabulary with the reference's four special tokens (ids 0-3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<s>", "<\\s>"
PAD, UNK, BOS, EOS = 0, 1, 2, 3
BPE_SEPARATOR = "@@"


class VocabularyMismatchError(ValueError):
    """The vocabulary file does not describe the BPE corpus it is used with."""


class Vocabulary:
    """Token <-> id maps. `pad_to` rounds the size up (fp16 GEMMs like multiples of 8)."""

    def __init__(self, tokens: Sequence[str], pad_to: int = 1) -> None:
        specials = [PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN]
        words = specials + [t for t in tokens if t not in specials]
        filler = (-len(words)) % pad_to
        words += [f"madeupword{i:04d}" for i in range(filler)]
        self.tokens = words
        self.index = {token: i for i, token in enumerate(words)}

    @classmethod
    def load(cls, path: Path, pad_to: int = 1) -> Vocabulary:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: vocabulary file missing")
        with path.open(encoding="utf-8") as lines:
            tokens = [line.rstrip("\n").split("\t")[0].strip() for line in lines]
        tokens = [t for t in tokens if t]
        if not tokens:
            raise VocabularyMismatchError(f"{path}: vocabulary is empty")
        return cls(tokens, pad_to=pad_to)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, line: str) -> list[int]:
        """BOS + ids + EOS, as the reference's Tokenizer.segment."""
        return [BOS, *(self.index.get(word, UNK) for word in line.split()), EOS]

    def to_bpe_text(self, ids: Iterable[int]) -> str:
        words = (self.tokens[i] for i in ids if i not in (PAD, BOS, EOS))
        return " ".join(words)


def check_unknown_rate(path: Path, unknown: int, total: int, limit: float = 0.005) -> None:
    """Fail when many tokens of `path` are unknown: the vocabulary belongs to other BPE files."""
    if total and unknown / total > limit:
        raise VocabularyMismatchError(
            f"{path}: {unknown} of {total} tokens ({unknown / total:.1%}) are not in the vocabulary "
            f"(expected at most {limit:.1%}): the vocabulary does not match these BPE files"
        )


def remove_bpe(text: str) -> str:
    """Join subwords: 'new@@ s' -> 'news' (subword-nmt's `sed -r 's/(@@ )|(@@ ?$)//g'`)."""
    return text.replace(BPE_SEPARATOR + " ", "").removesuffix(BPE_SEPARATOR).strip()
