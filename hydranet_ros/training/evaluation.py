"""Run a model (or the inference engine) over a dataset and accumulate metrics.

Two predictors share the same metric code:
- :class:`ModelPredictor` runs the network directly on the dataset's resolution (what training
  sees; the right choice for generated scenes, which come at the training resolution);
- :class:`EnginePredictor` runs ``hydranet_ros.engine.InferenceEngine`` on the raw uint8 picture,
  so the numbers measure what users of the package get.
Both return, per frame, labels (H, W) and depth (H, W) metres at the ground truth's size.
"""
import time
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Sequence,
                    Tuple, Union)

import numpy as np
import torch

from ..data.sample import Sample, SampleSource
from ..data.transforms import to_tensors
from ..model import HydraNet, HydraNetConfig
from .losses import upsample_to
from .metrics import ConfusionMatrix, DepthMetrics

if TYPE_CHECKING:
    from ..engine import InferenceEngine

FramePrediction = Tuple[np.ndarray, np.ndarray]
"""Labels (H, W) and depth (H, W) metres of one frame, at the ground truth's size."""


class Predictor(Protocol):
    """What :func:`evaluate` runs: anything that predicts a list of same-sized samples."""

    name: str
    config: HydraNetConfig

    def predict_batch(self, samples: Sequence[Sample]) -> List[FramePrediction]:
        """Return one prediction per sample."""


class ModelPredictor:
    """Predict with a HydraNet module at the input's own resolution (batched)."""

    name = 'model'

    def __init__(self, model: HydraNet, device: Union[str, torch.device] = 'cpu') -> None:
        self.model = model
        self.device = torch.device(device)
        self.config = model.config

    @torch.no_grad()
    def predict_batch(self, samples: Sequence[Sample]) -> List[FramePrediction]:
        """Return a list of (labels uint8/int, depth float32 metres) for same-sized samples."""
        was_training = self.model.training
        self.model.eval()
        try:
            images = torch.stack([to_tensors(s, self.config.mean, self.config.std)['image']
                                  for s in samples]).to(self.device)
            outputs = self.model(images)
            size = images.shape[-2:]
            labels = upsample_to(outputs['segm'], size).argmax(1).cpu().numpy()
            depth = upsample_to(outputs['depth'], size)[:, 0].float().cpu().numpy()
        finally:
            self.model.train(was_training)
        return list(zip(labels, depth))


class EnginePredictor:
    """Predict with the inference engine, one uint8 RGB picture at a time."""

    name = 'engine'

    def __init__(self, engine: 'InferenceEngine') -> None:
        self.engine = engine
        self.config = engine.config

    def predict_batch(self, samples: Sequence[Sample]) -> List[FramePrediction]:
        """Return a list of (labels, depth metres with NaN where the engine marks invalid)."""
        results = []
        for sample in samples:
            prediction = self.engine.infer(sample.image, encoding='rgb8')
            results.append((prediction.labels, prediction.depth))
        return results


@dataclass
class FrameScore:
    """Per-frame numbers used to find the worst frames."""

    index: int
    name: str
    miou: float
    abs_rel: float


@dataclass
class EvaluationResult:
    """Metrics of a whole set and the per-frame scores."""

    segmentation: Dict[str, Any]
    depth: Dict[str, float]
    frames: List[FrameScore] = field(default_factory=list)
    seconds: float = 0.0
    skipped: List[Dict[str, Any]] = field(default_factory=list)
    """Frames that could not be read (index and reason), left out of the metrics."""

    def as_dict(self) -> Dict[str, Any]:
        """Return plain values for JSON."""
        return {'segmentation': self.segmentation, 'depth': self.depth,
                'frames': len(self.frames), 'seconds': self.seconds,
                'skipped': list(self.skipped)}


UNREADABLE_SAMPLE_ERRORS = (OSError, ValueError)
"""What a dataset raises for a frame whose files are missing, unreadable or do not fit."""


def _read_samples(dataset: SampleSource, indices: range,
                  skipped: Optional[List[Dict[str, Any]]]) -> List[Tuple[int, Sample]]:
    """Return (index, sample) of the frames that can be read; list the others in ``skipped``.

    Without ``skipped`` a frame that cannot be read raises, as before.
    """
    samples = []
    for index in indices:
        try:
            samples.append((index, dataset[index]))
        except UNREADABLE_SAMPLE_ERRORS as error:
            if skipped is None:
                raise
            skipped.append({'index': index, 'error': str(error) or type(error).__name__})
    return samples


def evaluate(predictor: Predictor, dataset: SampleSource, num_classes: int,
             class_names: Optional[Sequence[str]] = None, min_depth_m: float = 0.0,
             max_depth_m: float = np.inf, batch_size: int = 8, limit: Optional[int] = None,
             progress: Optional[Callable[[int], None]] = None,
             on_frame: Optional[Callable[[int, Sample, np.ndarray, np.ndarray], None]] = None,
             skip_unreadable: bool = False) -> EvaluationResult:
    """Evaluate ``predictor`` on ``dataset`` (samples with optional depth and labels).

    Args:
        on_frame: optional callable(index, sample, labels, depth) for each frame (pictures).
        progress: optional callable(number of frames done).
        skip_unreadable: a frame whose files cannot be read (``OSError``, ``ValueError``) is
            listed in the result's ``skipped`` and left out, instead of ending the evaluation.

    Returns:
        :class:`EvaluationResult`.
    """
    confusion = ConfusionMatrix(num_classes)
    depth_metrics = DepthMetrics(min_depth_m, max_depth_m)
    frames: List[FrameScore] = []
    skipped: List[Dict[str, Any]] = []
    count = len(dataset) if limit is None else min(int(limit), len(dataset))
    start = time.perf_counter()
    index = 0
    while index < count:
        stop = min(index + batch_size, count)
        read = _read_samples(dataset, range(index, stop), skipped if skip_unreadable else None)
        batch = [sample for _, sample in read]
        groups: Dict[Tuple[int, ...], List[int]] = {}
        for offset, sample in enumerate(batch):
            groups.setdefault(sample.image.shape, []).append(offset)
        predictions: Dict[int, FramePrediction] = {}
        for offsets in groups.values():
            for offset, result in zip(offsets, predictor.predict_batch([batch[o]
                                                                        for o in offsets])):
                predictions[offset] = result
        for offset, (frame_index, sample) in enumerate(read):
            labels, depth = predictions[offset]
            frames.append(_score_frame(frame_index, sample, labels, depth, num_classes,
                                       confusion, depth_metrics))
            if on_frame is not None:
                on_frame(frame_index, sample, labels, depth)
        index = stop
        if progress is not None:
            progress(index)
    return EvaluationResult(confusion.summary(list(class_names) if class_names else None),
                            depth_metrics.summary(), frames, time.perf_counter() - start,
                            skipped)


def _score_frame(index: int, sample: Sample, labels: np.ndarray, depth: np.ndarray,
                 num_classes: int, confusion: ConfusionMatrix,
                 depth_metrics: DepthMetrics) -> FrameScore:
    """Add a frame to the set's metrics and return its own mIoU and AbsRel (NaN if unknown)."""
    frame_miou = frame_abs_rel = float('nan')
    if sample.labels is not None:
        confusion.update(labels, sample.labels)
        frame_confusion = ConfusionMatrix(num_classes)
        frame_confusion.update(labels, sample.labels)
        frame_miou = frame_confusion.summary()['miou']
    if sample.depth_m is not None:
        depth_metrics.update(depth, sample.depth_m)
        frame_depth = DepthMetrics(depth_metrics.min_depth_m, depth_metrics.max_depth_m)
        frame_depth.update(depth, sample.depth_m)
        frame_abs_rel = frame_depth.summary()['abs_rel']
    return FrameScore(index, sample.name, frame_miou, frame_abs_rel)
