"""Stop training when a validation metric has not improved for a number of evaluations."""
from typing import Any, Dict, Optional


class EarlyStopping:
    """Track the best value of a metric.

    Args:
        mode: 'max' (higher is better, e.g. mIoU) or 'min' (e.g. AbsRel).
        patience: evaluations without improvement before :attr:`should_stop` turns True
            (0 disables stopping; the best value is still tracked).
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, mode: str = 'max', patience: int = 0, min_delta: float = 0.0) -> None:
        if mode not in ('max', 'min'):
            raise ValueError(f'mode must be max or min, got {mode!r}')
        self.mode = mode
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.bad_evaluations = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record a new value; return True if it is the best so far."""
        value = float(value)
        if self.best is None:
            improved = True
        elif self.mode == 'max':
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved:
            self.best, self.best_epoch, self.bad_evaluations = value, int(epoch), 0
        else:
            self.bad_evaluations += 1
        return improved

    @property
    def should_stop(self) -> bool:
        """Whether patience has run out."""
        return self.patience > 0 and self.bad_evaluations >= self.patience

    def state_dict(self) -> Dict[str, Any]:
        """Return the state as plain values (for checkpoints)."""
        return {'mode': self.mode, 'patience': self.patience, 'min_delta': self.min_delta,
                'best': self.best, 'best_epoch': self.best_epoch,
                'bad_evaluations': self.bad_evaluations}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.best = state['best']
        self.best_epoch = state['best_epoch']
        self.bad_evaluations = int(state['bad_evaluations'])
