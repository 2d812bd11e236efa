"""Training: the loop, checkpoints, DDP, settings."""
