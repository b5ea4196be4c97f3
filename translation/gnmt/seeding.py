"""Every random stream of a run derives from one master seed (as the reference's generate_seeds)."""

from __future__ import annotations

import random
from dataclasses import dataclass

_MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class RunSeeds:
    worker: list[int]  # one per rank: model initialisation is the same on all (worker 0's), dropout differs
    epoch: list[int]  # shuffling seed of each epoch, shared by all ranks

    @classmethod
    def derive(cls, master_seed: int, world_size: int, epochs: int) -> RunSeeds:
        rng = random.Random(master_seed)
        worker = [rng.randint(0, _MAX_SEED) for _ in range(world_size)]
        epoch = [rng.randint(0, _MAX_SEED) for _ in range(epochs)]
        return cls(worker, epoch)
