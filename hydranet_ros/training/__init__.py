"""Training and evaluation of HydraNet: losses, metrics, task weighting, schedules, the loop."""
