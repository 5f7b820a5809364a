"""Generated street scenes: on the fly, or pre-rendered to memory-mapped arrays on disk.

A split directory holds ``images.npy`` (N, H, W, 3) uint8, ``depth.npy`` (N, H, W) float32
metres (+inf for sky), ``labels.npy`` (N, H, W) uint8 and ``meta.json`` (seed, size, camera
matrix, class names and colours). Rendering to disk once and reading by memory map is much faster
than rendering during training.
"""
import json
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Dict, Optional

import numpy as np
from numpy.lib.format import open_memmap

from .classes import KITTI_MAX_DEPTH_M
from .sample import Sample
from .scene_generator import StreetSceneGenerator

META_FILE = 'meta.json'


def _render_range(seed: int, height: int, width: int, root: str, start: int, stop: int) -> int:
    """Render frames ``start``..``stop - 1`` into the split's arrays; return how many."""
    generator = StreetSceneGenerator(seed=seed, height=height, width=width)
    images = np.load(os.path.join(root, 'images.npy'), mmap_mode='r+')
    depth = np.load(os.path.join(root, 'depth.npy'), mmap_mode='r+')
    labels = np.load(os.path.join(root, 'labels.npy'), mmap_mode='r+')
    for index in range(start, stop):
        scene = generator.render(index)
        images[index], depth[index], labels[index] = scene.image_rgb, scene.depth_m, scene.labels
    images.flush()
    depth.flush()
    labels.flush()
    return stop - start


def write_scene_split(root: str, count: int, seed: int, height: int, width: int,
                      workers: int = 1,
                      progress: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """Render ``count`` scenes of generator ``seed`` into directory ``root``.

    Args:
        root: output directory (created).
        count: number of frames; frame i is ``StreetSceneGenerator(seed, ...).render(i)``.
        seed, height, width: generator settings.
        workers: processes rendering in parallel.
        progress: optional callable receiving the number of frames finished so far.

    Returns:
        The contents written to ``meta.json``.
    """
    os.makedirs(root, exist_ok=True)
    generator = StreetSceneGenerator(seed=seed, height=height, width=width)
    open_memmap(os.path.join(root, 'images.npy'), 'w+', np.uint8, (count, height, width, 3))
    open_memmap(os.path.join(root, 'depth.npy'), 'w+', np.float32, (count, height, width))
    open_memmap(os.path.join(root, 'labels.npy'), 'w+', np.uint8, (count, height, width))
    chunk = 50
    ranges = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    done = 0
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_render_range, seed, height, width, root, start, stop)
                   for start, stop in ranges]
        for future in futures:
            done += future.result()
            if progress is not None:
                progress(done)
    meta = {'count': count, 'seed': seed, 'height': height, 'width': width,
            'K': generator.K.tolist(), 'class_names': list(generator.class_names),
            'class_colors': [list(c) for c in generator.class_colors]}
    with open(os.path.join(root, META_FILE), 'w') as handle:
        json.dump(meta, handle, indent=2)
    return meta


class SceneStoreDataset:
    """Read a split written by :func:`write_scene_split` (memory-mapped, random access)."""

    max_depth_m = KITTI_MAX_DEPTH_M

    def __init__(self, root: str, limit: Optional[int] = None) -> None:
        meta_path = os.path.join(root, META_FILE)
        if not os.path.exists(meta_path):
            raise FileNotFoundError(f'{root!r} is not a generated scene split (no {META_FILE}); '
                                    f'write one with hydranet-train --generate')
        with open(meta_path) as handle:
            self.meta = json.load(handle)
        self.root = root
        self.images = np.load(os.path.join(root, 'images.npy'), mmap_mode='r')
        self.depth = np.load(os.path.join(root, 'depth.npy'), mmap_mode='r')
        self.labels = np.load(os.path.join(root, 'labels.npy'), mmap_mode='r')
        self.length = len(self.images) if limit is None else min(int(limit), len(self.images))
        self.class_names = tuple(self.meta['class_names'])
        self.class_colors = tuple(tuple(c) for c in self.meta['class_colors'])

    def __len__(self) -> int:
        """Return the number of frames."""
        return self.length

    def __getitem__(self, index: int) -> Sample:
        """Return frame ``index`` as a :class:`Sample`."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        return Sample(np.array(self.images[index]), np.array(self.depth[index]),
                      np.array(self.labels[index]), name=f'{index:06d}')


class StreetSceneDataset:
    """Render generated street scenes on demand (no disk; slower than a pre-rendered split)."""

    max_depth_m = KITTI_MAX_DEPTH_M

    def __init__(self, count: int, seed: int = 0, height: int = 96, width: int = 320) -> None:
        self.generator = StreetSceneGenerator(seed=seed, height=height, width=width)
        self.length = int(count)
        self.class_names = self.generator.class_names
        self.class_colors = self.generator.class_colors

    def __len__(self) -> int:
        """Return the number of frames."""
        return self.length

    def __getitem__(self, index: int) -> Sample:
        """Render frame ``index`` and return it as a :class:`Sample`."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        scene = self.generator.render(index)
        return Sample(scene.image_rgb, scene.depth_m, scene.labels, name=f'{index:06d}')
