"""Fixtures for the GNMT tests: the sample corpus (built once) and a small model trained on it once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from translation.layout import Wmt16Layout
from translation.sample import build_sample

if TYPE_CHECKING:
    from tests.gnmt.training_helpers import TrainedSample

# The trainer's options for the small model the tests use (see training_helpers.SMALL_MODEL).
SMALL_TRAINING_ARGS = [
    "--hidden-size",
    "64",
    "--global-batch-size",
    "32",
    "--lr",
    "5e-3",
    "--warmup-steps",
    "10",
]


@pytest.fixture(scope="session")
def sample_layout(tmp_path_factory: pytest.TempPathFactory) -> Wmt16Layout:
    data_dir = tmp_path_factory.mktemp("gnmt-sample")
    build_sample(data_dir, seed=0)
    return Wmt16Layout(data_dir)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Two spinning OpenMP threads on a busy 2-core machine run ~20x slower than one."""
    import torch  # noqa: PLC0415  (torch only when needed)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_sample(sample_layout: Wmt16Layout) -> TrainedSample:
    import torch  # noqa: PLC0415

    from tests.gnmt.training_helpers import train_small_model  # noqa: PLC0415  (torch only when needed)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_small_model(sample_layout, epochs=5)
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def data_dir_copy(sample_layout: Wmt16Layout, tmp_path: Path) -> Path:
    """A private copy of the sample's files, for tests that break them."""
    target = Wmt16Layout(tmp_path)
    target.root.mkdir(parents=True)
    for path in sample_layout.required():
        (target.root / path.name).write_bytes(path.read_bytes())
    return tmp_path
