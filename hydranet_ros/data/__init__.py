"""Datasets, augmentations and the procedural street-scene generator used for training."""
