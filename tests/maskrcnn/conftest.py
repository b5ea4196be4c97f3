"""Fixtures for the Mask R-CNN benchmark: the sample dataset and small model settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from object_detection.maskrcnn.config import ModelOptions

# Test-only model settings for the ~160 x 120 px sample images: batch 2, small inputs, trimmed
# inference, few RoIs for the box and mask heads (the mask head dominates an iteration's cost on a CPU).
SMALL = ["--global-batch-size", "2", "--min-size", "128", "--max-size", "192", "--test-proposals", "100",
         "--detections-per-image", "20", "--roi-samples", "64", "--loader-workers", "0"]


# The same, as the model's options (config imports no torch).
SMALL_MODEL = ModelOptions(min_size=128, max_size=192, rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=100,
                           box_detections_per_img=20, box_batch_size_per_image=64)


@pytest.fixture(scope="session")
def maskrcnn_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample dataset (object_detection.sample), backbone statistics calibrated on its images."""
    from object_detection.sample import build_sample  # noqa: PLC0415

    data_dir = tmp_path_factory.mktemp("maskrcnn-sample")
    build_sample(data_dir, seed=0)
    return data_dir
