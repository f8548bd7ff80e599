"""Training: data, degradations, augmentation, losses and the loop (needs the `train` extra)."""
