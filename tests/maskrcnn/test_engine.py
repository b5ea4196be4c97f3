"""The training loop reads the loss only every `sync_every` iterations: one all-reduce and one host read
(`.item()`, `float()`, `bool()`, ... of a tensor) per window of iterations and none within one (the
README's "no `.item()` or all-reduce within an iteration"), and every worker gets the same mean, which is
what makes them stop together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(600)]

torch = pytest.importorskip("torch")

ITERATIONS, SYNC_EVERY, WORLD = 10, 4, 2


def _pixel(rank: int, iteration: int) -> int:
    return 10 * rank + iteration


class _ConstantLoss(torch.nn.Module):
    """A loss that is the image's pixel value over 255 (what the loop's uint8-to-float conversion gives),
    plus a trainable weight's zero contribution, so that the optimizer has work. It counts its forwards:
    the iterations begun."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.forwards = 0

    def forward(self, images: list, targets: list) -> dict:
        self.forwards += 1
        return {"loss": images[0].mean() + 0 * self.weight.sum()}


HOST_READS = ("item", "__float__", "__int__", "__bool__", "tolist", "numpy")


def _count_host_reads(model: _ConstantLoss, reads: list[int]) -> None:
    """Each way Python reads a tensor's value on the host (what waits for a GPU) appends the number of
    iterations begun so far to `reads`."""
    for name in HOST_READS:
        real = getattr(torch.Tensor, name)

        def read(self, *args, _real=real, **kwargs):
            reads.append(model.forwards)
            return _real(self, *args, **kwargs)

        setattr(torch.Tensor, name, read)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist  # noqa: PLC0415

    from object_detection.maskrcnn.distributed import Workers  # noqa: PLC0415
    from object_detection.maskrcnn.engine import train_one_epoch  # noqa: PLC0415

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    all_reduces = 0
    real_all_reduce = dist.all_reduce

    def counting_all_reduce(*args, **kwargs):
        nonlocal all_reduces
        all_reduces += 1
        return real_all_reduce(*args, **kwargs)

    dist.all_reduce = counting_all_reduce
    model = _ConstantLoss()
    reads: list[int] = []
    _count_host_reads(model, reads)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    batches = [([torch.full((3, 2, 2), _pixel(rank, k), dtype=torch.uint8)], [{"image_id": torch.tensor(k)}])
               for k in range(ITERATIONS)]
    stats = train_one_epoch(model, optimizer, scheduler, batches, workers=Workers(rank, WORLD, 0, torch.device("cpu")),
                            scaler=torch.amp.GradScaler("cpu", enabled=False), iteration=0, max_iterations=10**6,
                            epoch=1, sync_every=SYNC_EVERY)
    dist.destroy_process_group()
    Path(out_dir, f"{rank}.json").write_text(json.dumps({"all_reduces": all_reduces, "losses": stats.losses,
                                                          "windows": stats.windows, "images": stats.images,
                                                          "host_reads": reads}))


def test_the_loss_is_averaged_over_the_workers_once_per_window_and_never_within_one(tmp_path: Path) -> None:
    torch.multiprocessing.start_processes(_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)),
                                          nprocs=WORLD, start_method="spawn")
    windows = [range(start, min(start + SYNC_EVERY, ITERATIONS)) for start in range(0, ITERATIONS, SYNC_EVERY)]
    expected = [sum(_pixel(r, k) for r in range(WORLD) for k in w) / 255 / (len(w) * WORLD) for w in windows]
    for rank in range(WORLD):
        seen = json.loads((tmp_path / f"{rank}.json").read_text())
        assert seen["all_reduces"] == len(windows), seen  # 3 for 10 iterations, not one per iteration
        # the loss is read once per window, after its last iteration (4, 8, 10), never within one
        assert seen["host_reads"] == [w[-1] + 1 for w in windows], seen
        assert seen["windows"] == [len(w) for w in windows]
        assert seen["losses"] == pytest.approx(expected, rel=1e-6)
        assert seen["images"] == ITERATIONS * WORLD
