"""One training or evaluation sample: a picture and whichever annotations it carries."""
from dataclasses import dataclass, replace
from typing import Any, Optional, Protocol

import numpy as np


@dataclass
class Sample:
    """A picture with optional depth and labels (asymmetric annotations).

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth_m: (H, W) float32 metres; NaN (or +inf) where unknown; None if the sample has no
            depth annotation at all.
        labels: (H, W) uint8 class ids, ``classes.IGNORE_INDEX`` where unknown; None if the
            sample has no segmentation annotation at all.
        name: an identifier for reports (file stem or frame number).
    """

    image: np.ndarray
    depth_m: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    name: str = ''

    def __post_init__(self) -> None:
        """Check that the annotations have the picture's size."""
        size = self.image.shape[:2]
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f'sample {self.name!r}: image must be HxWx3, got '
                             f'{self.image.shape}')
        for key in ('depth_m', 'labels'):
            value = getattr(self, key)
            if value is not None and value.shape[:2] != size:
                raise ValueError(f'sample {self.name!r}: {key} is {value.shape[:2]}, image is '
                                 f'{size}; annotations must match the picture')

    def with_(self, **changes: Any) -> 'Sample':
        """Return a copy with some fields replaced."""
        return replace(self, **changes)


class SampleSource(Protocol):
    """What the datasets of this package are: a sized, indexable source of samples."""

    def __len__(self) -> int:
        """Return the number of samples."""

    def __getitem__(self, index: int) -> Sample:
        """Return sample ``index``."""
