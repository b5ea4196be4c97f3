"""Gradient accumulation makes the global batch: `accumulation` batches of B sentences give the update one
batch of accumulation x B sentences gives (float64, where rounding cannot tell the two orders of summing
apart), and the sampler's groups are exactly the large batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from translation.gnmt.data.dataset import ParallelCorpus
from translation.gnmt.data.sampler import BucketingSampler
from translation.gnmt.models.gnmt import GNMT
from translation.gnmt.options import batch_split
from translation.gnmt.train.trainer import Trainer
from translation.token_cache import Side

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.usefixtures("one_torch_thread")]

VOCAB = 40
STEPS = 3


def _side(rng: np.random.Generator, sentences: int) -> Side:
    lengths = rng.integers(2, 12, sentences)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Side(rng.integers(4, VOCAB, int(offsets[-1])).astype(np.int64), offsets.astype(np.int64), 0)


def _model() -> GNMT:
    torch.manual_seed(5)
    return GNMT(VOCAB, hidden_size=16, num_layers=2, dropout=0.0).double()


def _train(corpus: ParallelCorpus, batch_size: int, accumulation: int
           ) -> tuple[GNMT, list[float], list[list[torch.Tensor]], list[list[int]]]:
    """STEPS updates; each step's loss and gradients (no clipping: Adam alone would hide a scaled gradient)."""
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    trainer = Trainer(model, optimizer, scheduler, torch.device("cpu"), clip_grad_norm=1e9, check_every=1,
                      accumulation=accumulation)
    sampler = BucketingSampler(corpus.lengths(), batch_size, [3], max_len=14, num_buckets=1,
                               accumulation=accumulation)
    order = list(sampler)[: STEPS * accumulation]
    losses, gradients = [], []
    for k in range(0, len(order), accumulation):
        losses.append(float(trainer.train_step([corpus[i] for i in order[k:k + accumulation]])))
        gradients.append([p.grad.clone() for p in model.parameters()])
    return model, losses, gradients, order


def test_four_accumulated_batches_update_the_weights_as_their_union_does() -> None:
    rng = np.random.default_rng(0)
    corpus = ParallelCorpus(_side(rng, 200), _side(rng, 200), max_len=14)
    small, small_losses, small_gradients, small_order = _train(corpus, batch_size=4, accumulation=4)
    large, large_losses, large_gradients, large_order = _train(corpus, batch_size=16, accumulation=1)
    # The sampler cuts each global batch of 16 into the four batches of 4 that make one step.
    assert [sorted(i for batch in small_order[k:k + 4] for i in batch) for k in range(0, 12, 4)] == [
        sorted(b) for b in large_order]
    assert small_losses == pytest.approx(large_losses, rel=1e-12)
    for step, (mine, theirs) in enumerate(zip(small_gradients, large_gradients, strict=True)):
        for a, b in zip(mine, theirs, strict=True):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-15), step
    start = dict(_model().named_parameters())
    moved = 0.0
    for (name, a), b in zip(small.named_parameters(), large.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13), name
        moved = max(moved, float((a - start[name]).abs().max()))
    assert moved > 1e-3  # three steps moved the weights: the equality is not of two untrained models


@pytest.mark.parametrize(("global_batch", "workers", "batch", "expected"), [
    (1024, 1, None, (128, 8)), (1024, 8, None, (128, 1)), (1024, 16, None, (64, 1)), (1024, 2, 64, (64, 8)),
    (32, 2, None, (16, 1)), (96, 1, None, (96, 1)), (1024, 3, None, None), (1024, 4, 96, None)])
def test_the_global_batch_is_split_into_worker_batches_and_accumulation_steps(
        global_batch: int, workers: int, batch: int | None, expected: tuple[int, int] | None) -> None:
    from translation.gnmt.options import OptionsError  # noqa: PLC0415

    if expected is None:
        with pytest.raises(OptionsError):
            batch_split(global_batch, workers, batch)
    else:
        assert batch_split(global_batch, workers, batch) == expected


def test_a_run_logs_the_global_batch_and_the_accumulation_steps_that_make_it(sample_layout, tmp_path) -> None:
    from translation.gnmt import main as trainer  # noqa: PLC0415

    log = tmp_path / "gnmt.log"
    code = trainer.main(["--data-dir", str(sample_layout.data_dir), "--seed", "3", "--log-file", str(log),
                         "--hidden-size", "32", "--global-batch-size", "256", "--batch-size", "32", "--epochs", "1",
                         "--beam-size", "1"])
    assert code == trainer.EXIT_BELOW_TARGET
    records = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines()]
    logged = {r["key"]: r["value"] for r in records}
    assert (logged["global_batch_size"], logged["gradient_accumulation_steps"]) == (256, 8)
    # The schedule counts optimizer steps (at most train_samples / 256 in the epoch), not the 8 passes of each.
    assert 0 < logged["opt_learning_rate_remain_steps"] <= 0.666 * logged["train_samples"] / 256
