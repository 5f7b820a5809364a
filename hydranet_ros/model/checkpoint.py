"""Reading and writing HydraNet checkpoints (published upstream format and this project's)."""
import os
from typing import Any, Dict, Iterable, Optional, Tuple, Union

import torch

from .checkpoint_file import CheckpointError, read_checkpoint_file
from .config import HydraNetConfig
from .key_mapping import is_upstream_state_dict, upstream_to_local
from .network import HydraNet, build_hydranet
from .presets import get_preset, guess_preset

PROJECT_FORMAT = 'hydranet_ros'
PROJECT_FORMAT_VERSION = 1
MAX_LISTED_KEYS = 12
PathLike = Union[str, os.PathLike]
__all__ = ['CheckpointError', 'infer_config', 'load_hydranet', 'read_checkpoint_file',
           'save_hydranet']


def _listing(keys: Iterable[str]) -> str:
    """Return the first keys in sorted order, and how many more there are."""
    ordered = sorted(keys)
    shown = ', '.join(ordered[:MAX_LISTED_KEYS])
    more = len(ordered) - MAX_LISTED_KEYS
    return shown + (f' ... and {more} more' if more > 0 else '')


def _unwrap(content: Any, path: str) -> Tuple[Dict[str, torch.Tensor], Optional[dict], dict]:
    """Return (state_dict, stored config or None, extra) from a checkpoint's contents."""
    if not isinstance(content, dict):
        raise CheckpointError(
            f'checkpoint {path!r} holds a {type(content).__name__}, expected a dict with a '
            f'state_dict')
    if 'state_dict' in content and isinstance(content['state_dict'], dict):
        state_dict = content['state_dict']
        if content.get('format') == PROJECT_FORMAT:
            stored, extra = content.get('config'), content.get('extra', {})
            if stored is not None and not isinstance(stored, dict):
                raise CheckpointError(f'checkpoint {path!r} has an invalid config (a '
                                      f'{type(stored).__name__}, expected a dict)')
            return _tensors_only(state_dict, path), stored, extra if isinstance(extra, dict) \
                else {}
        return _tensors_only(state_dict, path), None, {}
    if content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return content, None, {}
    raise CheckpointError(
        f'checkpoint {path!r} has no state_dict (top-level keys: {_listing(map(str, content))})')


def _tensors_only(state_dict: dict, path: str) -> Dict[str, torch.Tensor]:
    """Return ``state_dict`` if it maps names to tensors; raise ``CheckpointError`` if not."""
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f'checkpoint {path!r} has a state_dict entry {key!r} holding a '
                f'{type(value).__name__}, not a tensor: it is not a file of network weights')
    return state_dict


def _normalise_keys(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Strip a DataParallel ``module.`` prefix and map published key names."""
    if state_dict and all(key.startswith('module.') for key in state_dict):
        state_dict = {key[len('module.'):]: value for key, value in state_dict.items()}
    if is_upstream_state_dict(state_dict):
        state_dict = upstream_to_local(state_dict)
    return state_dict


def infer_config(state_dict: Dict[str, torch.Tensor], path: str = '<weights>',
                 preset: Optional[str] = None) -> HydraNetConfig:
    """Infer classes and tasks from the weights; take names/colours from the matching preset."""
    segm_weight = state_dict.get('heads.segm.out.weight')
    if segm_weight is None or 'heads.depth.out.weight' not in state_dict:
        raise CheckpointError(
            f'checkpoint {path!r} has no segmentation and depth heads: it is not a HydraNet '
            f'(first keys: {_listing(list(state_dict)[:MAX_LISTED_KEYS])})')
    num_classes = int(segm_weight.shape[0])
    tasks = ('segm', 'depth') + (('normals',) if 'heads.normals.out.weight' in state_dict else ())
    name = preset or guess_preset(num_classes, tasks)
    if name is None:
        return HydraNetConfig(num_classes=num_classes, tasks=tasks)
    config = get_preset(name)
    if config.num_classes != num_classes or set(config.tasks) != set(tasks):
        raise CheckpointError(
            f'checkpoint {path!r} has {num_classes} classes and tasks {list(tasks)}, but preset '
            f'{name!r} expects {config.num_classes} classes and tasks {list(config.tasks)}; '
            f'choose another preset or leave it empty to infer it')
    return config


def _fill_missing_batch_counters(state_dict: Dict[str, torch.Tensor],
                                 model: HydraNet) -> Dict[str, torch.Tensor]:
    """Add ``num_batches_tracked`` buffers that torch 0.4 checkpoints lack."""
    filled = dict(state_dict)
    for key, value in model.state_dict().items():
        if key.endswith('num_batches_tracked') and key not in filled:
            filled[key] = torch.zeros_like(value)
    return filled


def _check_fit(state_dict: Dict[str, torch.Tensor], model: HydraNet, path: str) -> None:
    expected = model.state_dict()
    unknown = set(state_dict) - set(expected)
    missing = set(expected) - set(state_dict)
    mismatched = [f'{key}: file {tuple(state_dict[key].shape)} vs network '
                  f'{tuple(expected[key].shape)}'
                  for key in expected if key in state_dict
                  and state_dict[key].shape != expected[key].shape]
    problems = []
    if unknown:
        problems.append(f'{len(unknown)} unknown key(s): {_listing(unknown)}')
    if missing:
        problems.append(f'{len(missing)} missing key(s): {_listing(missing)}')
    if mismatched:
        shown = '; '.join(mismatched[:MAX_LISTED_KEYS])
        problems.append(f'{len(mismatched)} shape mismatch(es): {shown}')
    if problems:
        raise CheckpointError(f'checkpoint {path!r} does not fit a HydraNet with '
                              f'{model.config.num_classes} classes and tasks '
                              f'{list(model.config.tasks)}: ' + '; '.join(problems))


def load_hydranet(path: PathLike, device: Union[str, torch.device] = 'cpu',
                  preset: Optional[str] = None,
                  config: Optional[HydraNetConfig] = None) -> HydraNet:
    """Load a HydraNet from a published or project checkpoint, strictly, in eval mode.

    The number of classes and the tasks are inferred from the weights unless ``config`` is given;
    ``preset`` names the published variant whose class names and colours to use.
    """
    path = os.fspath(path)
    content = read_checkpoint_file(path)
    state_dict, stored_config, extra = _unwrap(content, path)
    state_dict = _normalise_keys(state_dict)
    if config is None and stored_config is not None:
        try:
            config = HydraNetConfig.from_dict(stored_config)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f'checkpoint {path!r} has an invalid config: {error}') from error
        if preset:
            inferred = infer_config(state_dict, path, preset)
            config.class_names = config.class_names or inferred.class_names
    if config is None:
        config = infer_config(state_dict, path, preset)
    model = build_hydranet(config)
    state_dict = _fill_missing_batch_counters(state_dict, model)
    _check_fit(state_dict, model, path)
    model.load_state_dict(state_dict, strict=True)
    model.checkpoint_extra = extra
    model.checkpoint_path = path
    return model.to(device).eval()


def save_hydranet(model: HydraNet, path: PathLike, extra: Optional[dict] = None,
                  half: bool = False) -> None:
    """Write ``model`` in the project format: weights plus the config that rebuilds it.

    ``extra`` must hold plain Python values (numbers, strings, lists, dicts). ``half`` stores
    floating-point weights as fp16 (half the size; loading casts them back).
    """
    state_dict = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        state_dict[key] = value.clone()
    content = {
        'format': PROJECT_FORMAT,
        'version': PROJECT_FORMAT_VERSION,
        'config': model.config.to_dict(),
        'state_dict': state_dict,
        'extra': dict(extra or {}),
    }
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    torch.save(content, os.fspath(path))
