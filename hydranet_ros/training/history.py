"""Training logs: per-step and per-epoch rows in CSV and JSON, and plots as PNG (Agg backend)."""
import csv
import json
import math
import os
from typing import Any, Dict, List, Mapping

STEPS_CSV = 'steps.csv'
EPOCHS_CSV = 'epochs.csv'
HISTORY_JSON = 'history.json'
PLOT_PNG = 'training.png'


class TrainingHistory:
    """Collect rows and write them into ``out_dir``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.steps: List[Dict[str, Any]] = []
        self.epochs: List[Dict[str, Any]] = []

    def log_step(self, step: int, epoch: int, losses: Mapping[str, float],
                 learning_rates: Mapping[str, float], images_per_second: float) -> None:
        """Record losses, learning rates and throughput of one optimiser step."""
        row: Dict[str, Any] = {'step': step, 'epoch': epoch,
                               'images_per_second': images_per_second}
        row.update(losses)
        row.update({f'lr_{name}': value for name, value in learning_rates.items()})
        self.steps.append(row)
        _write_csv(os.path.join(self.out_dir, STEPS_CSV), self.steps)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """Record the summary of one epoch (losses, validation metrics, timing)."""
        self.epochs.append(dict(row))
        _write_csv(os.path.join(self.out_dir, EPOCHS_CSV), self.epochs)
        with open(os.path.join(self.out_dir, HISTORY_JSON), 'w') as handle:
            json.dump({'epochs': self.epochs, 'steps': self.steps}, handle, indent=1,
                      default=_json_value)

    def state_dict(self) -> Dict[str, str]:
        """Return the rows (for resuming)."""
        return {'steps': json.dumps(self.steps, default=_json_value),
                'epochs': json.dumps(self.epochs, default=_json_value)}

    def load_state_dict(self, state: Mapping[str, str]) -> None:
        """Restore rows saved by :meth:`state_dict`."""
        self.steps = json.loads(state['steps'])
        self.epochs = json.loads(state['epochs'])

    def plot(self) -> None:
        """Draw losses per step and validation metrics per epoch into ``training.png``."""
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot

        figure, axes = pyplot.subplots(1, 3, figsize=(15, 4))
        for key in ('loss', 'loss_segm', 'loss_depth'):
            points = [(row['step'], row[key]) for row in self.steps
                      if _finite(row.get(key))]
            if points:
                axes[0].plot(*zip(*points), label=key)
        axes[0].set_xlabel('step')
        axes[0].set_yscale('log')
        axes[0].set_title('training losses')
        for key in ('val_miou', 'val_pixel_accuracy', 'val_delta1'):
            points = [(row['epoch'], row[key]) for row in self.epochs if _finite(row.get(key))]
            if points:
                axes[1].plot(*zip(*points), marker='o', label=key[4:])
        axes[1].set_xlabel('epoch')
        axes[1].set_title('validation (higher is better)')
        for key in ('val_abs_rel', 'val_rmse_log'):
            points = [(row['epoch'], row[key]) for row in self.epochs if _finite(row.get(key))]
            if points:
                axes[2].plot(*zip(*points), marker='o', label=key[4:])
        axes[2].set_xlabel('epoch')
        axes[2].set_title('validation (lower is better)')
        for axis in axes:
            if axis.get_legend_handles_labels()[0]:
                axis.legend(loc='upper right')
            axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(os.path.join(self.out_dir, PLOT_PNG), dpi=80)
        pyplot.close(figure)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _json_value(value: Any) -> float:
    """Write numbers JSON does not know (numpy scalars) as floats."""
    return float(value)


def _write_csv(path: str, rows: List[Dict[str, Any]]) -> None:
    """Write ``rows`` with the union of their keys as columns, in order of appearance."""
    keys: List[str] = []
    for row in rows:
        keys.extend(key for key in row if key not in keys)
    with open(path, 'w', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
