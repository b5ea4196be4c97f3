"""Train the small GNMT on the sample through the package's own pieces and measure BLEU before and after."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translation import token_cache
from translation.gnmt.data.dataset import ParallelCorpus, SourceCorpus
from translation.gnmt.data.sampler import BucketingSampler
from translation.gnmt.data.vocabulary import Vocabulary
from translation.gnmt.inference.beam_search import BeamSettings
from translation.gnmt.inference.bleu import bleu_of_bpe_output
from translation.gnmt.inference.translator import translate
from translation.gnmt.models.gnmt import GNMT
from translation.gnmt.seeding import RunSeeds
from translation.gnmt.train.lr_scheduler import WarmupMultiStepSchedule
from translation.gnmt.train.trainer import Trainer
from translation.layout import TGT_LANG, Wmt16Layout

# Small enough for CPU tests, the same network otherwise (4+4 layers, bidirectional first layer).
SMALL_MODEL = {"hidden_size": 64, "num_layers": 4, "dropout": 0.2}


@dataclass
class TrainedSample:
    model: GNMT
    vocab: Vocabulary
    untrained_bleu: float
    trained_bleu: float
    steps: int


def sample_bleu(model: GNMT, layout: Wmt16Layout, vocab: Vocabulary) -> float:
    test = SourceCorpus.from_side(token_cache.load(layout, vocab).test_src, max_len=150)
    output = translate(model, test, vocab, BeamSettings(beam_size=5, max_len=60), 64, torch.device("cpu"))
    return bleu_of_bpe_output(output, layout.test_raw(TGT_LANG))


def train_small_model(layout: Wmt16Layout, epochs: int, seed: int = 1) -> TrainedSample:
    seeds = RunSeeds.derive(seed, world_size=1, epochs=epochs)
    vocab = Vocabulary.load(layout.vocab)
    torch.manual_seed(seeds.worker[0])
    model = GNMT(len(vocab), **SMALL_MODEL)
    untrained = sample_bleu(model, layout, vocab)
    corpora = token_cache.load(layout, vocab)
    train = ParallelCorpus(corpora.train_src, corpora.train_tgt, max_len=50)
    sampler = BucketingSampler(train.lengths(), 32, seeds.epoch, max_len=50)
    loader = torch.utils.data.DataLoader(train, sampler=sampler, batch_size=None)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    schedule = WarmupMultiStepSchedule.for_run(len(sampler) * epochs, warmup_steps=10)
    trainer = Trainer(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), torch.device("cpu"))
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        trainer.train_epoch(loader)
    model.eval()
    return TrainedSample(model, vocab, untrained, sample_bleu(model, layout, vocab), trainer.step_count)
