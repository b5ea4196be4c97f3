"""Length bucketing with per-epoch shuffling from the seed (the reference's BucketingSampler).

Pairs fall into `num_buckets` equal-width buckets by max(source, target) length. Each epoch every
bucket is shuffled and cut to whole global batches, the global batches of all buckets are
shuffled together, and each worker takes its slice of every global batch: `accumulation`
consecutive batches of `batch_size` pairs, whose gradients make one optimizer step. All workers use
the same epoch seed, so they agree on the order without talking.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


class BucketingSampler:
    def __init__(
        self,
        lengths: torch.Tensor,
        batch_size: int,
        epoch_seeds: Sequence[int],
        max_len: int,
        num_buckets: int = 5,
        world_size: int = 1,
        rank: int = 0,
        accumulation: int = 1,
    ) -> None:
        if batch_size < 1 or accumulation < 1:
            raise ValueError(f"batch size and accumulation steps must be positive, got {batch_size}, {accumulation}")
        self.batch_size = batch_size
        self.accumulation = accumulation
        self.global_batch_size = batch_size * world_size * accumulation
        self.epoch_seeds = list(epoch_seeds)
        self.world_size, self.rank = world_size, rank
        width = (max_len + num_buckets - 1) // num_buckets
        bucket_ids = torch.clamp(lengths // width, max=num_buckets - 1)
        self.buckets = [torch.nonzero(bucket_ids == b).flatten() for b in range(num_buckets)]
        self.epoch = 0
        if len(self) == 0:
            raise ValueError(
                f"no bucket holds a whole global batch of {self.global_batch_size} pairs "
                f"(buckets: {[len(b) for b in self.buckets]}): lower the batch size"
            )

    def set_epoch(self, epoch: int) -> None:
        if not 0 <= epoch < len(self.epoch_seeds):
            raise ValueError(f"epoch {epoch} has no shuffling seed ({len(self.epoch_seeds)} seeds)")
        self.epoch = epoch

    def steps(self) -> int:
        """Global batches (optimizer steps) per epoch."""
        return sum(len(b) // self.global_batch_size for b in self.buckets)

    def __len__(self) -> int:
        """Batches per worker per epoch."""
        return self.steps() * self.accumulation

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.epoch_seeds[self.epoch])
        global_batches = []
        for bucket in self.buckets:
            whole = len(bucket) // self.global_batch_size * self.global_batch_size
            shuffled = bucket[torch.randperm(len(bucket), generator=generator)][:whole]
            global_batches.append(shuffled.view(-1, self.global_batch_size))
        batches = torch.cat(global_batches)
        batches = batches[torch.randperm(len(batches), generator=generator)]
        mine = batches.view(len(batches), self.world_size, self.accumulation * self.batch_size)[:, self.rank]
        return iter(mine.reshape(-1, self.batch_size).tolist())
