"""The training loop: optimiser groups, schedule, validation, checkpoints, resume, logging.

Checkpoints are written with ``save_hydranet`` in the project format, so ``best.pt`` and
``last.pt`` load anywhere a model is accepted. ``last.pt`` also carries the training state
(epoch, step, optimiser, scheduler, task weighting, early stopping, history) in ``extra``, which
``torch.load(weights_only=True)`` reads back; :meth:`Trainer.resume` continues from it.
"""
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import torch
from tqdm import tqdm

from ..data.sample import SampleSource
from ..data.tensor_dataset import TensorDataset
from ..model import HydraNet, load_hydranet, read_checkpoint_file, save_hydranet
from .early_stopping import EarlyStopping
from .evaluation import ModelPredictor, evaluate
from .history import TrainingHistory
from .losses import task_losses
from .schedule import build_scheduler
from .task_weighting import TaskWeighting

Batch = Dict[str, torch.Tensor]
"""A training batch: the keys of ``data.transforms.to_tensors`` stacked along a first axis."""

BEST_CHECKPOINT = 'best.pt'
LAST_CHECKPOINT = 'last.pt'
MONITORED_METRICS = {'miou': 'max', 'pixel_accuracy': 'max', 'abs_rel': 'min', 'rmse': 'min',
                     'delta1': 'max', 'score': 'max'}
"""Validation metrics that can select the best checkpoint; 'score' is mIoU + delta1 - AbsRel."""


@dataclass
class TrainSettings:
    """Hyper-parameters of one run (stored in every checkpoint's ``extra``)."""

    epochs: int = 10
    batch_size: int = 8
    encoder_lr: float = 1e-3
    decoder_lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = 'adamw'
    momentum: float = 0.9
    schedule: str = 'cosine'
    warmup_steps: int = 200
    poly_power: float = 0.9
    depth_loss: str = 'berhu'
    grad_clip: float = 5.0
    monitor: str = 'score'
    patience: int = 0
    eval_every: int = 1
    checkpoint_every_steps: int = 200
    log_every_steps: int = 20
    max_minutes: float = 0.0
    max_steps: int = 0
    seed: int = 0
    notes: Dict[str, Any] = field(default_factory=dict)


def parameter_groups(model: HydraNet, weighting: TaskWeighting,
                     settings: TrainSettings) -> List[Dict[str, Any]]:
    """Return optimiser groups: encoder, decoder plus heads, and learned task weights."""
    groups = [
        {'name': 'encoder', 'params': list(model.encoder.parameters()),
         'lr': settings.encoder_lr},
        {'name': 'decoder', 'params': list(model.decoder.parameters())
         + list(model.heads.parameters()), 'lr': settings.decoder_lr},
    ]
    weighting_params = list(weighting.parameters())
    if weighting_params:
        groups.append({'name': 'task_weighting', 'params': weighting_params,
                       'lr': settings.decoder_lr, 'weight_decay': 0.0})
    return groups


def build_optimizer(model: HydraNet, weighting: TaskWeighting,
                    settings: TrainSettings) -> torch.optim.Optimizer:
    """Return AdamW or SGD (Nesterov momentum) over :func:`parameter_groups`."""
    groups = parameter_groups(model, weighting, settings)
    if settings.optimizer == 'adamw':
        return torch.optim.AdamW(groups, lr=settings.decoder_lr,
                                 weight_decay=settings.weight_decay)
    if settings.optimizer == 'sgd':
        return torch.optim.SGD(groups, lr=settings.decoder_lr, momentum=settings.momentum,
                               nesterov=True, weight_decay=settings.weight_decay)
    raise ValueError(f'unknown optimizer {settings.optimizer!r}; expected adamw or sgd')


class Trainer:
    """Train a HydraNet on a tensor dataset and validate on a sample dataset.

    Args:
        model: a HydraNet (``model.config`` is saved with every checkpoint).
        weighting: a task-weighting module (``task_weighting.build_task_weighting``).
        train_set: a ``data.tensor_dataset.TensorDataset``.
        val_set: samples for validation (``data.sample.Sample``), or None.
        settings: :class:`TrainSettings`.
        out_dir: where checkpoints, history and plots go.
    """

    def __init__(self, model: HydraNet, weighting: TaskWeighting, train_set: TensorDataset,
                 val_set: Optional[SampleSource], settings: TrainSettings, out_dir: str,
                 device: Union[str, torch.device] = 'cpu') -> None:
        self.model = model.to(device)
        self.weighting = weighting.to(device)
        self.train_set = train_set
        self.val_set = val_set
        self.settings = settings
        self.out_dir = out_dir
        self.device = torch.device(device)
        os.makedirs(out_dir, exist_ok=True)
        self.steps_per_epoch = max(1, len(train_set) // settings.batch_size)
        self.total_steps = self.steps_per_epoch * settings.epochs
        self.optimizer = build_optimizer(model, weighting, settings)
        self.scheduler = build_scheduler(self.optimizer, self.total_steps, settings.warmup_steps,
                                         settings.schedule, settings.poly_power)
        self.stopper = EarlyStopping(MONITORED_METRICS[settings.monitor], settings.patience)
        self.history = TrainingHistory(out_dir)
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.train_seconds = 0.0
        self.images_seen = 0
        self.stop_signal: Optional[str] = None

    # ------------------------------------------------------------------ checkpoints
    def _extra(self, with_state: bool) -> Dict[str, Any]:
        """Return the checkpoint's ``extra``: run summary, plus the training state if asked."""
        config = self.model.config
        extra: Dict[str, Any] = {
            'training': {
                'settings': asdict(self.settings),
                'epoch': self.epoch, 'global_step': self.global_step,
                'train_seconds': self.train_seconds, 'images_seen': self.images_seen,
                'best_metric': self.stopper.best, 'best_epoch': self.stopper.best_epoch,
                'monitor': self.settings.monitor, 'depth_range_m': [config.min_depth_m,
                                                                    config.max_depth_m],
            },
        }
        if with_state:
            extra['training_state'] = {
                'epoch': self.epoch, 'step_in_epoch': self.step_in_epoch,
                'global_step': self.global_step,
                'optimizer': self.optimizer.state_dict(),
                'scheduler': self.scheduler.state_dict(),
                'weighting': self.weighting.state_dict(),
                'early_stopping': self.stopper.state_dict(),
                'history': self.history.state_dict(),
                'train_seconds': self.train_seconds, 'images_seen': self.images_seen,
                'torch_rng': torch.get_rng_state(),
            }
        return extra

    def save(self, name: str, with_state: bool) -> str:
        """Write a checkpoint into ``out_dir`` (atomically: temp file, then rename)."""
        path = os.path.join(self.out_dir, name)
        temporary = path + '.tmp'
        save_hydranet(self.model, temporary, extra=self._extra(with_state))
        os.replace(temporary, path)
        return path

    def resume(self, path: Optional[str] = None) -> 'Trainer':
        """Continue from ``last.pt`` (or ``path``): weights, optimiser, schedule, position."""
        path = path or os.path.join(self.out_dir, LAST_CHECKPOINT)
        content = read_checkpoint_file(path)
        state = content.get('extra', {}).get('training_state')
        if state is None:
            raise ValueError(f'{path!r} holds no training state; resume from a last.pt')
        loaded = load_hydranet(path, device=self.device)
        self.model.load_state_dict(loaded.state_dict())
        self.model.train()
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.weighting.load_state_dict(state['weighting'])
        self.stopper.load_state_dict(state['early_stopping'])
        self.history.load_state_dict(state['history'])
        self.epoch = int(state['epoch'])
        self.step_in_epoch = int(state['step_in_epoch'])
        self.global_step = int(state['global_step'])
        self.train_seconds = float(state['train_seconds'])
        self.images_seen = int(state['images_seen'])
        torch.set_rng_state(state['torch_rng'])
        return self

    # ------------------------------------------------------------------ loop
    def _epoch_order(self, epoch: int) -> List[int]:
        """Return the shuffled sample order of ``epoch`` (the same on every resume)."""
        generator = torch.Generator().manual_seed(self.settings.seed * 100003 + epoch)
        return torch.randperm(len(self.train_set), generator=generator).tolist()

    def _batches(self, epoch: int, first_step: int) -> Iterator[Tuple[int, Batch]]:
        """Yield (step, batch) for the steps of ``epoch`` from ``first_step`` on."""
        self.train_set.epoch = epoch
        order = self._epoch_order(epoch)
        size = self.settings.batch_size
        for step in range(first_step, self.steps_per_epoch):
            indices = order[step * size:(step + 1) * size]
            items = [self.train_set[i] for i in indices]
            yield step, {key: torch.stack([item[key] for item in items]) for key in items[0]}

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> Dict[str, float]:
        """Run one optimiser step; return the per-task and total loss values (floats)."""
        config = self.model.config
        images = batch['image'].to(self.device)
        targets = {'labels': batch['labels'].to(self.device),
                   'depth': batch['depth'].to(self.device)}
        outputs = self.model(images)
        losses = task_losses(outputs, targets, self.settings.depth_loss, config.min_depth_m,
                             config.max_depth_m)
        total = self.weighting(losses)
        self.optimizer.zero_grad(set_to_none=True)
        if total is not None:
            total.backward()
            if self.settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
            self.optimizer.step()
        self.scheduler.step()
        values = {f'loss_{task}': (loss.item() if loss is not None else float('nan'))
                  for task, loss in losses.items()}
        values['loss'] = total.item() if total is not None else float('nan')
        return values

    def validate(self) -> Dict[str, float]:
        """Return validation metrics as flat floats (empty without a validation set)."""
        if self.val_set is None or len(self.val_set) == 0:
            return {}
        config = self.model.config
        result = evaluate(ModelPredictor(self.model, self.device), self.val_set,
                          config.num_classes, config.class_names, config.min_depth_m,
                          config.max_depth_m, batch_size=self.settings.batch_size)
        flat = {'miou': result.segmentation['miou'],
                'pixel_accuracy': result.segmentation['pixel_accuracy']}
        flat.update({key: value for key, value in result.depth.items() if key != 'pixels'})
        for name, value in result.segmentation['per_class_iou'].items():
            flat[f'iou_{name}'] = float('nan') if value is None else value
        flat['score'] = _score(flat)
        return flat

    def _on_signal(self, number: int, frame: Optional[FrameType]) -> None:
        """Ask the loop to stop after the current step."""
        self.stop_signal = signal.Signals(number).name

    def fit(self, dry_run: bool = False) -> str:
        """Train until the epochs are done, early stopping fires or time runs out.

        SIGTERM and SIGINT stop after the current step with a resumable ``last.pt``.
        """
        previous = {}
        for number in (signal.SIGTERM, signal.SIGINT):
            try:
                previous[number] = signal.signal(number, self._on_signal)
            except ValueError:  # not the main thread
                pass
        try:
            return self._fit(dry_run)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _fit(self, dry_run: bool) -> str:
        """Run the epochs; return why training stopped."""
        settings = self.settings
        deadline = (time.monotonic() + 60.0 * settings.max_minutes
                    if settings.max_minutes > 0 else math.inf)
        stop_reason = 'epochs done'
        while self.epoch < settings.epochs:
            self.model.train()
            sums: Dict[str, float] = {}
            counts: Dict[str, int] = {}
            epoch_start = time.perf_counter()
            epoch_images = 0
            bar = tqdm(self._batches(self.epoch, self.step_in_epoch),
                       total=self.steps_per_epoch, initial=self.step_in_epoch,
                       desc=f'epoch {self.epoch + 1}/{settings.epochs}', unit='batch',
                       dynamic_ncols=True, mininterval=5.0)
            interrupted = ''
            for step, batch in bar:
                step_start = time.perf_counter()
                values = self.train_step(batch)
                elapsed = time.perf_counter() - step_start
                self.train_seconds += elapsed
                batch_images = len(batch['image'])
                self.images_seen += batch_images
                epoch_images += batch_images
                self.global_step += 1
                self.step_in_epoch = step + 1
                for key, value in values.items():
                    if not math.isnan(value):
                        sums[key] = sums.get(key, 0.0) + value
                        counts[key] = counts.get(key, 0) + 1
                bar.set_postfix(loss=f'{values["loss"]:.3f}',
                                img_s=f'{batch_images / max(elapsed, 1e-9):.1f}')
                if self.global_step % settings.log_every_steps == 0 or dry_run:
                    self.history.log_step(self.global_step, self.epoch, values,
                                          self._learning_rates(), batch_images / elapsed)
                if dry_run:
                    bar.close()
                    return 'dry run'
                if (settings.checkpoint_every_steps
                        and self.global_step % settings.checkpoint_every_steps == 0):
                    self.save(LAST_CHECKPOINT, with_state=True)
                if self.stop_signal:
                    interrupted = f'stopped by {self.stop_signal}'
                elif time.monotonic() > deadline:
                    interrupted = f'time limit of {settings.max_minutes} min'
                elif settings.max_steps and self.global_step >= settings.max_steps:
                    interrupted = f'step limit of {settings.max_steps} steps'
                if interrupted:
                    break
            bar.close()
            if interrupted:
                self.save(LAST_CHECKPOINT, with_state=True)
                stop_reason = interrupted
                break
            epoch_seconds = time.perf_counter() - epoch_start
            self.epoch += 1
            self.step_in_epoch = 0
            row = {'epoch': self.epoch, 'global_step': self.global_step,
                   'epoch_seconds': epoch_seconds,
                   'images_per_second': epoch_images / max(epoch_seconds, 1e-9)}
            row.update({key: sums[key] / counts[key] for key in sums})
            row.update({f'lr_{name}': lr for name, lr in self._learning_rates().items()})
            row.update(self.weighting.describe())
            if self.epoch % settings.eval_every == 0 or self.epoch == settings.epochs:
                metrics = self.validate()
                row.update({f'val_{key}': value for key, value in metrics.items()})
                if metrics and self.stopper.update(metrics[settings.monitor], self.epoch):
                    self.save(BEST_CHECKPOINT, with_state=False)
            self.history.log_epoch(row)
            self.save(LAST_CHECKPOINT, with_state=True)
            self.history.plot()
            tqdm.write(_epoch_line(row))
            if self.stopper.should_stop:
                stop_reason = (f'early stopping: {settings.monitor} did not improve for '
                               f'{settings.patience} evaluations')
                break
        finished = self.epoch >= settings.epochs or self.stopper.should_stop
        if finished and not os.path.exists(os.path.join(self.out_dir, BEST_CHECKPOINT)):
            self.save(BEST_CHECKPOINT, with_state=False)  # no validation set: the last weights
        return stop_reason

    def _learning_rates(self) -> Dict[str, float]:
        """Return the current learning rate of each parameter group, by group name."""
        return {group.get('name', str(i)): group['lr']
                for i, group in enumerate(self.optimizer.param_groups)}


def _score(metrics: Mapping[str, float]) -> float:
    """Combine segmentation and depth quality into one number to select checkpoints."""
    parts = [metrics.get('miou'), metrics.get('delta1')]
    abs_rel = metrics.get('abs_rel')
    values = [v for v in parts if v is not None and not math.isnan(v)]
    if abs_rel is not None and not math.isnan(abs_rel):
        values.append(-abs_rel)
    return float(sum(values)) if values else float('nan')


def _epoch_line(row: Mapping[str, Any]) -> str:
    """Return the one-line summary printed after an epoch."""
    keys = ('loss', 'loss_segm', 'loss_depth', 'val_miou', 'val_abs_rel', 'val_delta1',
            'images_per_second')
    shown = ', '.join(f'{key}={row[key]:.4g}' for key in keys if key in row)
    return f'epoch {row["epoch"]}: {shown}'
