"""A torch ``Dataset`` view of any sample source, with reproducible per-sample augmentation."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..model import IMAGENET_MEAN, IMAGENET_STD
from .sample import SampleSource
from .transforms import to_tensors, Transform


class TensorDataset(torch.utils.data.Dataset):
    """Augment and convert the samples of ``source`` to tensors.

    The augmentation of sample i in epoch e draws from a generator seeded with (seed, e, i), so a
    resumed run sees exactly the samples it would have seen without the interruption. Set
    :attr:`epoch` before iterating.
    """

    def __init__(self, source: SampleSource, transform: Optional[Transform] = None,
                 seed: int = 0, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.source = source
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.mean = mean
        self.std = std

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.source)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        """Return sample ``index`` as a dict of tensors (see ``transforms.to_tensors``)."""
        sample = self.source[index]
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            sample = self.transform(sample, rng)
        tensors = to_tensors(sample, self.mean, self.std)
        tensors['index'] = torch.tensor(int(index))
        return tensors
