"""The network reproduces the published implementation's outputs for the published checkpoints."""
import re

import numpy as np
import pytest
import torch

from conftest import REFERENCE_DIR, require_shared
from hydranet_ros.model import (build_hydranet, HydraNetConfig, load_hydranet, local_to_upstream,
                                upstream_to_local)

TOLERANCE = 1e-4
CASES = [
    ('nyud', 'input_480x640', '480x640'),
    ('kitti', 'input_480x640', '480x640'),
    ('nyud', 'nyud_input_real_480x640', 'real_480x640'),
    ('kitti', 'kitti_input_real_370x1226', 'real_370x1226'),
]


def _reference(name: str) -> np.ndarray:
    return np.load(require_shared(REFERENCE_DIR / f'{name}.npy'))


@pytest.mark.parametrize('variant,input_name,suffix', CASES)
def test_reproduces_reference_outputs(variant, input_name, suffix):
    model = load_hydranet(require_shared(REFERENCE_DIR / f'ckpt_{variant}_random.pth'))
    with torch.inference_mode():
        outputs = model(torch.from_numpy(_reference(input_name)))
    segm = _reference(f'{variant}_segm_{suffix}')
    depth = _reference(f'{variant}_depth_{suffix}')
    assert outputs['segm'].shape == segm.shape
    assert outputs['depth'].shape == depth.shape
    assert np.abs(outputs['segm'].numpy() - segm).max() <= TOLERANCE
    assert np.abs(outputs['depth'].numpy() - depth).max() <= TOLERANCE
    assert (outputs['segm'].argmax(1).numpy() == segm.argmax(1)).all()


@pytest.mark.parametrize('variant,num_classes', [('nyud', 40), ('kitti', 6)])
def test_state_dict_matches_published_keys_and_shapes(variant, num_classes):
    listing = require_shared(REFERENCE_DIR / f'state_dict_{variant}.txt').read_text()
    published = {}
    for line in listing.splitlines():
        if line.startswith('#') or not line.strip():
            continue
        key, shape, _ = line.split('\t')
        published[key] = tuple(int(v) for v in re.findall(r'\d+', shape))
    model = build_hydranet(HydraNetConfig(num_classes=num_classes))
    ours = {key: tuple(value.shape)
            for key, value in local_to_upstream(model.state_dict()).items()}
    assert ours == published
    assert list(ours) == list(published), 'state_dict order differs from the published one'


def test_parameter_count_matches_published_network():
    model = build_hydranet(HydraNetConfig(num_classes=6))
    assert sum(p.numel() for p in model.parameters()) == 2_991_687


@pytest.mark.parametrize('height,width', [(480, 640), (370, 1226), (97, 131), (33, 65)])
def test_output_stride_is_four_rounded_up(height, width):
    model = build_hydranet(HydraNetConfig(num_classes=3)).eval()
    with torch.inference_mode():
        outputs = model(torch.zeros(1, 3, height, width))
    expected = (height, width)
    for _ in range(2):
        expected = tuple((v + 1) // 2 for v in expected)
    assert outputs['segm'].shape == (1, 3) + expected
    assert outputs['depth'].shape == (1, 1) + expected


def test_key_mapping_round_trips():
    model = build_hydranet(HydraNetConfig(num_classes=5, tasks=('segm', 'depth', 'normals')))
    local = model.state_dict()
    assert list(upstream_to_local(local_to_upstream(local))) == list(local)
