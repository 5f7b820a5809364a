"""Translation between the published checkpoint key names and this package's module names.

Published (upstream) names come from a model built with ``setattr``: ``layer1``..``layer8``,
``conv3``..``conv8``, ``crpN.0.K_outvar_dimred``, ``conv_adaptN``, ``pre_segm``/``segm`` and so on.
"""
import re
from typing import Callable, Dict, List, Tuple

import torch

_BLOCK_PARTS = ('expand', 'depthwise', 'project')

# (upstream pattern, replacement) pairs applied to the start of a key, first match wins.
_TO_LOCAL: List[Tuple[str, Callable[[re.Match], str]]] = [
    (r'layer1\.', lambda m: 'encoder.stem.'),
    (r'layer([2-8])\.(\d+)\.output\.([0-2])\.',
     lambda m: f'encoder.stages.{int(m[1]) - 2}.{m[2]}.{_BLOCK_PARTS[int(m[3])]}.'),
    (r'conv([3-8])\.', lambda m: f'decoder.reduce{m[1]}.'),
    (r'crp([1-4])\.0\.([1-9])_outvar_dimred\.',
     lambda m: f'decoder.crp{m[1]}.convs.{int(m[2]) - 1}.'),
    (r'conv_adapt([2-4])\.', lambda m: f'decoder.adapt{m[1]}.'),
    (r'pre_(segm|depth)\.', lambda m: f'heads.{m[1]}.pre.'),
    (r'pre_normal\.', lambda m: 'heads.normals.pre.'),
    (r'(segm|depth)\.', lambda m: f'heads.{m[1]}.out.'),
    (r'normal\.', lambda m: 'heads.normals.out.'),
]

_TO_UPSTREAM: List[Tuple[str, Callable[[re.Match], str]]] = [
    (r'encoder\.stem\.', lambda m: 'layer1.'),
    (r'encoder\.stages\.(\d+)\.(\d+)\.(expand|depthwise|project)\.',
     lambda m: f'layer{int(m[1]) + 2}.{m[2]}.output.{_BLOCK_PARTS.index(m[3])}.'),
    (r'decoder\.reduce(\d)\.', lambda m: f'conv{m[1]}.'),
    (r'decoder\.crp(\d)\.convs\.(\d+)\.',
     lambda m: f'crp{m[1]}.0.{int(m[2]) + 1}_outvar_dimred.'),
    (r'decoder\.adapt(\d)\.', lambda m: f'conv_adapt{m[1]}.'),
    (r'heads\.(segm|depth)\.pre\.', lambda m: f'pre_{m[1]}.'),
    (r'heads\.normals\.pre\.', lambda m: 'pre_normal.'),
    (r'heads\.(segm|depth)\.out\.', lambda m: f'{m[1]}.'),
    (r'heads\.normals\.out\.', lambda m: 'normal.'),
]


def _rename(key: str, rules: List[Tuple[str, Callable[[re.Match], str]]]) -> str:
    for pattern, replace in rules:
        match = re.match(pattern, key)
        if match:
            return replace(match) + key[match.end():]
    return key


def is_upstream_state_dict(state_dict: Dict[str, torch.Tensor]) -> bool:
    """Return True when the keys follow the published naming."""
    return any(key.startswith('layer1.') for key in state_dict)


def upstream_to_local(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename published keys to this package's module names (unknown keys pass unchanged)."""
    return {_rename(key, _TO_LOCAL): value for key, value in state_dict.items()}


def local_to_upstream(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename this package's keys to the published naming, e.g. to share weights upstream."""
    return {_rename(key, _TO_UPSTREAM): value for key, value in state_dict.items()}
