"""Combine per-task losses: fixed weights, or learned homoscedastic uncertainty.

Uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018) learns s_t = log(sigma_t^2) per task
and minimises  sum_t  c_t * exp(-s_t) * L_t + s_t / 2, with c_t = 1/2 for regression (depth) and
1 for classification (segmentation). A task missing from a batch adds neither term.
"""
from typing import Dict, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from .losses import TaskLosses

REGRESSION_TASKS = ('depth', 'normals')


class FixedWeighting(nn.Module):
    """Weighted sum of the task losses with constant weights."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        self.weights = dict(weights)

    def forward(self, losses: TaskLosses) -> Optional[torch.Tensor]:
        """Return the total loss (None if no task has a loss)."""
        terms = [self.weights.get(task, 1.0) * loss for task, loss in losses.items()
                 if loss is not None]
        return torch.stack(terms).sum() if terms else None

    def describe(self) -> Dict[str, float]:
        """Return the current weights as plain floats."""
        return {f'weight_{task}': float(weight) for task, weight in self.weights.items()}


class UncertaintyWeighting(nn.Module):
    """Learned homoscedastic-uncertainty weighting; its parameters go to the optimiser."""

    def __init__(self, tasks: Sequence[str], initial_log_variance: float = 0.0) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.log_variance = nn.Parameter(torch.full((len(self.tasks),),
                                                    float(initial_log_variance)))

    def forward(self, losses: TaskLosses) -> Optional[torch.Tensor]:
        """Return the total loss (None if no task has a loss)."""
        terms = []
        for position, task in enumerate(self.tasks):
            loss = losses.get(task)
            if loss is None:
                continue
            log_variance = self.log_variance[position]
            factor = 0.5 if task in REGRESSION_TASKS else 1.0
            terms.append(factor * torch.exp(-log_variance) * loss + 0.5 * log_variance)
        return torch.stack(terms).sum() if terms else None

    def describe(self) -> Dict[str, float]:
        """Return the effective weight c_t * exp(-s_t) of each task as plain floats."""
        values = self.log_variance.detach()
        return {f'weight_{task}': float((0.5 if task in REGRESSION_TASKS else 1.0)
                                        * torch.exp(-values[i]))
                for i, task in enumerate(self.tasks)}


TaskWeighting = Union[FixedWeighting, UncertaintyWeighting]


def build_task_weighting(kind: str, tasks: Sequence[str] = ('segm', 'depth'),
                         weights: Optional[Mapping[str, float]] = None) -> TaskWeighting:
    """Return ``FixedWeighting`` ('fixed') or ``UncertaintyWeighting`` ('uncertainty')."""
    if kind == 'fixed':
        weights = weights or {}
        return FixedWeighting({task: float(weights.get(task, 1.0)) for task in tasks})
    if kind == 'uncertainty':
        return UncertaintyWeighting(tasks)
    raise ValueError(f'unknown task weighting {kind!r}; expected fixed or uncertainty')
