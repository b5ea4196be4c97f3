"""Where the GNMT files live inside --data-dir.

The names are the reference's (`seq2seq/data/config.py`): BPE-encoded training and dev corpora, the
BPE-encoded test source, the raw test reference for sacrebleu and the shared vocabulary. The names
keep `32000` even for the sample, which learns fewer merges, so the trainer needs no switch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Lang = Literal["en", "de"]
LANGS: tuple[Lang, ...] = ("en", "de")
SRC_LANG: Lang = "en"
TGT_LANG: Lang = "de"
BPE_SUFFIX = "bpe.32000"
TEST_SETS = ("newstest2014", "newstest2015", "newstest2016")
DEV_SETS = ("newstest2015", "newstest2016")  # concatenated: newstest_dev


@dataclass(frozen=True)
class Wmt16Layout:
    """Paths the trainer reads, all below `data_dir`."""

    data_dir: Path

    @property
    def root(self) -> Path:
        return self.data_dir / "wmt16_de_en"

    def train(self, lang: Lang) -> Path:
        return self.root / f"train.tok.clean.{BPE_SUFFIX}.{lang}"

    def dev(self, lang: Lang) -> Path:
        return self.root / f"newstest_dev.tok.clean.{BPE_SUFFIX}.{lang}"

    def test_bpe(self, lang: Lang) -> Path:
        """newstest2014, tokenised and BPE-encoded (not cleaned): the test source."""
        return self.root / f"newstest2014.tok.{BPE_SUFFIX}.{lang}"

    def test_raw(self, lang: Lang) -> Path:
        """newstest2014 as plain text: the reference sacrebleu scores against."""
        return self.root / f"newstest2014.{lang}"

    @property
    def vocab(self) -> Path:
        return self.root / f"vocab.{BPE_SUFFIX}"

    @property
    def bpe_codes(self) -> Path:
        return self.root / BPE_SUFFIX

    @property
    def token_cache(self) -> Path:
        """The training pairs and the test source as token ids (translation.token_cache)."""
        return self.root / "token_cache"

    @property
    def step_records(self) -> Path:
        """What each preprocessing step wrote (translation.preprocess)."""
        return self.root / ".steps"

    def required(self) -> list[Path]:
        """Files that must exist before training starts."""
        return [
            *(self.train(lang) for lang in LANGS),
            *(self.dev(lang) for lang in LANGS),
            *(self.test_bpe(lang) for lang in LANGS),
            *(self.test_raw(lang) for lang in LANGS),
            self.vocab,
        ]
