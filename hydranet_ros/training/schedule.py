"""Learning-rate schedules: linear warm-up, then poly or cosine decay, per optimiser step."""
import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ('poly', 'cosine', 'constant')


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, kind: str = 'cosine',
              power: float = 0.9, final_factor: float = 0.0) -> float:
    """Return the multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Warm-up rises linearly from 1/warmup_steps to 1; afterwards 'poly' follows
    (1 - progress)^power, 'cosine' follows (1 + cos(pi progress)) / 2, both scaled into
    [final_factor, 1]; 'constant' stays at 1.
    """
    if kind not in SCHEDULES:
        raise ValueError(f'unknown schedule {kind!r}; expected one of {SCHEDULES}')
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == 'constant':
        return 1.0
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    if kind == 'poly':
        shape = (1.0 - progress) ** power
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    return final_factor + (1.0 - final_factor) * shape


def build_scheduler(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0,
                    kind: str = 'cosine', power: float = 0.9,
                    final_factor: float = 0.0) -> LambdaLR:
    """Wrap :func:`lr_factor` in a ``LambdaLR`` (call ``scheduler.step()`` after each step)."""
    return LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, kind,
                                                      power, final_factor))
