"""Configuration of a HydraNet: what it predicts and how its inputs and outputs are scaled."""
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TASKS = ('segm', 'depth', 'normals')


@dataclass
class HydraNetConfig:
    """Everything needed to rebuild a HydraNet and interpret its outputs.

    Stored inside every checkpoint this project writes, so a checkpoint file describes itself.
    """

    num_classes: int = 40
    tasks: Tuple[str, ...] = ('segm', 'depth')
    class_names: Tuple[str, ...] = ()
    class_colors: Tuple[Tuple[int, int, int], ...] = ()
    min_depth_m: float = 0.0
    max_depth_m: float = 10.0
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    preset: str = ''
    notes: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Normalise sequences to tuples and check values."""
        self.tasks = tuple(self.tasks)
        self.class_names = tuple(self.class_names)
        self.class_colors = tuple(tuple(int(v) for v in c) for c in self.class_colors)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f'unknown task(s) {unknown}; expected a subset of {TASKS}')
        if 'segm' not in self.tasks or 'depth' not in self.tasks:
            raise ValueError(f'a HydraNet predicts segm and depth; got tasks {self.tasks}')
        if self.num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {self.num_classes}')
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f'{len(self.class_names)} class names for {self.num_classes} classes')
        if self.class_colors and len(self.class_colors) != self.num_classes:
            raise ValueError(
                f'{len(self.class_colors)} class colours for {self.num_classes} classes')
        if not 0.0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f'depth range must satisfy 0 <= min < max, got [{self.min_depth_m}, '
                f'{self.max_depth_m}] m')

    def to_dict(self) -> Dict[str, Any]:
        """Return plain Python types only (safe for ``torch.load(weights_only=True)``)."""
        data = asdict(self)
        data['tasks'] = list(self.tasks)
        data['class_names'] = list(self.class_names)
        data['class_colors'] = [list(c) for c in self.class_colors]
        data['mean'] = list(self.mean)
        data['std'] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'HydraNetConfig':
        """Rebuild from :meth:`to_dict` output; unknown keys are rejected."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'unknown config field(s) {unknown}')
        return cls(**data)
