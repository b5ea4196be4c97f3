"""Length bucketing, per-epoch shuffling from the seed, and the split of a global batch over workers."""

from __future__ import annotations

import pytest
import torch

from translation.gnmt.data.sampler import BucketingSampler

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(600)]

LENGTHS = torch.tensor([(i * 7) % 50 + 1 for i in range(400)])


def _bucket(index: int) -> int:
    return min(int(LENGTHS[index]) // 10, 4)


def test_batches_stay_in_one_bucket_and_epochs_reshuffle() -> None:
    sampler = BucketingSampler(LENGTHS, batch_size=16, epoch_seeds=[11, 12], max_len=50)
    first = list(sampler)
    assert len(first) == len(sampler) == sum(len(b) // 16 for b in sampler.buckets)
    assert all(len({_bucket(i) for i in batch}) == 1 for batch in first)
    assert len({i for batch in first for i in batch}) == 16 * len(first)  # no pair twice
    assert list(sampler) == first  # same epoch, same seed, same order
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_workers_split_each_global_batch() -> None:
    ranks = [BucketingSampler(LENGTHS, 8, [5], 50, world_size=2, rank=r) for r in range(2)]
    single = BucketingSampler(LENGTHS, 16, [5], 50)
    for mine, theirs, whole in zip(*ranks, single, strict=True):
        assert sorted(mine + theirs) == sorted(whole)
    assert ranks[0].global_batch_size == 16


def test_a_batch_larger_than_every_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="lower the batch size"):
        BucketingSampler(LENGTHS, batch_size=200, epoch_seeds=[1], max_len=50)
