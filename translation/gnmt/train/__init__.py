"""Loss, learning-rate schedule and the training loop."""
