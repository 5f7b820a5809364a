"""The inference engine: any camera image in, metric depth and labels out at its resolution."""
import logging
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

import cv2

from ..model import HydraNet, load_hydranet
from .backend import Backend
from .default_model import default_model_path
from .images import to_rgb
from .postprocess import label_dtype, mask_depth, postprocess_numpy, postprocess_torch
from .prediction import NetworkOutputs, Prediction
from .run_plan import plan_run, RunPlan
from .visualize import color_table, colorize_depth, overlay_labels

LOGGER = logging.getLogger(__name__)
DEFAULT_OVERLAY_ALPHA = 0.5


class InferenceEngine:
    """Runs a HydraNet on camera images and returns per-pixel depth, labels and confidence.

    ``model`` is a checkpoint path, a loaded :class:`HydraNet`, or None for the bundled default.
    How it runs (device, backend, precision, network input size) is decided by
    :func:`~.run_plan.plan_run` and kept as ``plan``: an explicit ``input_size`` (height,
    width) wins, a checkpoint that records its training size (as the bundled model does) runs
    at that size, any other at each image's size; images are resized to the network input and
    the outputs back to each image's size. ``backend_options`` are passed to the backend
    (torch: ``compile_model``, ``cuda_graphs``; onnxruntime: ``spin_wait``,
    ``calibration_pictures``).
    """

    def __init__(self, model: Union[str, os.PathLike, nn.Module, None] = None,
                 device: str = 'auto', backend: str = 'auto', precision: str = 'auto',
                 input_size: Optional[Tuple[int, int]] = None, threads: Optional[int] = None,
                 preset: Optional[str] = None, fallback_to_cpu: bool = True,
                 overlay_alpha: float = DEFAULT_OVERLAY_ALPHA,
                 cache_dir: Optional[str] = None,
                 backend_options: Optional[Mapping[str, Any]] = None) -> None:
        if not 0.0 <= overlay_alpha <= 1.0:
            raise ValueError(f'overlay_alpha must be in [0, 1], got {overlay_alpha}')
        if isinstance(model, nn.Module):
            network = model.eval()
        else:
            path = os.fspath(model) if model else default_model_path()
            network = load_hydranet(path, device='cpu', preset=preset)
        network = network.cpu()
        self.config = network.config
        self.plan: RunPlan = plan_run(self.config, device, backend, precision, input_size,
                                      fallback_to_cpu)
        self.device = self.plan.device
        self.overlay_alpha = overlay_alpha
        self.colors = color_table(self.config.class_colors, self.config.num_classes)
        self.labels_dtype = label_dtype(self.config.num_classes)
        self.backend = self._create_backend(network, threads, cache_dir,
                                            dict(backend_options or {}))
        LOGGER.info('inference engine ready: %s, %s, %d classes, tasks %s',
                    self.backend.describe(), self.network_input_text(),
                    self.config.num_classes, ','.join(self.config.tasks))

    def _create_backend(self, network: HydraNet, threads: Optional[int],
                        cache_dir: Optional[str], options: Dict[str, Any]) -> Backend:
        plan = self.plan
        if plan.backend == 'onnxruntime':
            from .onnx_backend import OnnxRuntimeBackend
            return OnnxRuntimeBackend(network, plan.device, plan.precision, threads=threads,
                                      cache_dir=cache_dir, **options)
        from .torch_backend import TorchBackend
        return TorchBackend(network, plan.device, plan.precision, threads=threads, **options)

    def network_input_text(self) -> str:
        """Return one line saying the network input size and why, for logs."""
        return self.plan.network_input_text()

    def describe(self) -> str:
        """Return a one-line description of backend, device and precision."""
        return self.backend.describe()

    def warm_up(self, height: int = 480, width: int = 640) -> None:
        """Run once on a blank image so that the first real frame is not slow."""
        self.infer(np.zeros((height, width, 3), np.uint8))

    def infer(self, image: np.ndarray, encoding: str = 'rgb8',
              with_overlay: bool = True) -> Prediction:
        """Predict depth, labels and confidence for one image of any size."""
        return self.infer_batch([image], encoding, with_overlay)[0]

    def infer_batch(self, images: Sequence[np.ndarray], encoding: str = 'rgb8',
                    with_overlay: bool = True) -> List[Prediction]:
        """Predict for several images; images of one size run as one batch."""
        started = time.perf_counter()
        rgb_images = [to_rgb(image, encoding) for image in images]
        groups = {}
        for index, rgb in enumerate(rgb_images):
            groups.setdefault(rgb.shape[:2], []).append(index)
        results: List[Optional[Prediction]] = [None] * len(rgb_images)
        convert_ms = (time.perf_counter() - started) * 1000.0
        for (height, width), indices in groups.items():
            batch = [rgb_images[i] for i in indices]
            predictions = self.finish(self._run_network(batch, height, width), with_overlay)
            for index, prediction in zip(indices, predictions):
                prediction.timings_ms['convert'] = convert_ms / len(rgb_images)
                results[index] = prediction
        return results

    def _network_input(self, batch: List[np.ndarray]) -> np.ndarray:
        if self.plan.input_size is None:
            return np.stack(batch)
        height, width = self.plan.input_size
        return np.stack([cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                         if image.shape[:2] != (height, width) else image for image in batch])

    def run_network(self, image: np.ndarray, encoding: str = 'rgb8',
                    threads: Optional[int] = None) -> NetworkOutputs:
        """Run the network on one image; ``finish`` turns the result into a Prediction.

        The two stages let a caller post-process one frame while the network runs the next.
        ``threads`` bounds the CPU threads of this run (None: the backend's own).
        """
        rgb = to_rgb(image, encoding)
        return self._run_network([rgb], *rgb.shape[:2], threads=threads)

    def run_network_many(self, images: Sequence[np.ndarray],
                         threads: Optional[int] = None) -> List[NetworkOutputs]:
        """Run the network on RGB images of any sizes, in as few batches as the plan allows.

        With a fixed network input size every image goes into one batch; otherwise images of
        one size share a batch. Each result holds one image, for ``finish``. ``threads`` as
        for ``run_network``; calls from several threads may run at once.
        """
        if len(images) == 1:
            return [self.run_network(images[0], threads=threads)]
        rgb = [to_rgb(image) for image in images]
        groups: Dict[Tuple[int, int], List[int]] = {}
        for index, image in enumerate(rgb):
            key = (0, 0) if self.plan.input_size is not None else image.shape[:2]
            groups.setdefault(key, []).append(index)
        results: List[Optional[NetworkOutputs]] = [None] * len(rgb)
        for indices in groups.values():
            batch = [rgb[i] for i in indices]
            together = self._run_network(batch, *batch[0].shape[:2], threads=threads)
            for offset, index in enumerate(indices):
                image = rgb[index]
                raw = {key: value[offset:offset + 1] for key, value in together.raw.items()}
                results[index] = NetworkOutputs([image], image.shape[0], image.shape[1], raw,
                                                dict(together.timings_ms))
        return results

    def _run_network(self, batch: List[np.ndarray], height: int, width: int,
                     threads: Optional[int] = None) -> NetworkOutputs:
        timings = {}
        started = time.perf_counter()
        network_input = self._network_input(batch)
        timings['resize'] = (time.perf_counter() - started) * 1000.0
        self.backend.prepare(*network_input.shape[1:3])
        started = time.perf_counter()
        raw = self.backend.run(network_input, threads)
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        timings['network'] = (time.perf_counter() - started) * 1000.0
        return NetworkOutputs(batch, height, width, raw, timings)

    def finish(self, result: NetworkOutputs, with_overlay: bool = True) -> List[Prediction]:
        """Resize the network's outputs to the images and decode them (one per image)."""
        batch, height, width, raw = result.images, result.height, result.width, result.raw
        timings = dict(result.timings_ms)
        started = time.perf_counter()
        if self.backend.outputs_on_device:
            outputs = postprocess_torch(raw, height, width)
            per_image = [{key: (None if value is None else value[i])
                          for key, value in outputs.items()} for i in range(len(batch))]
        else:
            per_image = [postprocess_numpy(raw['segm'][i], raw['depth'][i],
                                           raw['normals'][i] if 'normals' in raw else None,
                                           height, width) for i in range(len(batch))]
        predictions = []
        for image, outputs in zip(batch, per_image):
            depth = mask_depth(outputs['depth'], self.config.min_depth_m, self.config.max_depth_m)
            labels = outputs['labels'].astype(self.labels_dtype, copy=False)
            overlay = (overlay_labels(image, labels, self.colors, self.overlay_alpha)
                       if with_overlay else None)
            predictions.append(Prediction(depth=depth, labels=labels,
                                          confidence=outputs['confidence'], overlay=overlay,
                                          normals=outputs['normals']))
        timings['postprocess'] = (time.perf_counter() - started) * 1000.0 / len(batch)
        timings['network'] /= len(batch)
        for prediction in predictions:
            prediction.timings_ms.update(timings)
        return predictions

    def colorize_depth(self, depth_m: np.ndarray) -> np.ndarray:
        """Return an RGB picture of a depth image over the model's depth range."""
        return colorize_depth(depth_m, self.config.min_depth_m, self.config.max_depth_m)
