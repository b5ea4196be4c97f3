"""Fixtures for the Mask R-CNN benchmark: the sample dataset and small model settings."""

from __future__ import annotations

from pathlib import Path

import pytest

# Test-only model settings for the ~160 x 120 px sample images: batch 2, small inputs, trimmed
# inference, few RoIs for the box and mask heads (the mask head dominates an iteration's cost on a CPU).
SMALL = ["--global-batch-size", "2", "--min-size", "128", "--max-size", "192", "--test-proposals", "100",
         "--detections-per-image", "20", "--roi-samples", "64", "--loader-workers", "0"]


@pytest.fixture(scope="session")
def maskrcnn_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample dataset (object_detection.sample), backbone statistics calibrated on its images."""
    from object_detection.sample import build_sample  # noqa: PLC0415

    data_dir = tmp_path_factory.mktemp("maskrcnn-sample")
    build_sample(data_dir, seed=0)
    return data_dir
