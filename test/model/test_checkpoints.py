"""Checkpoint formats, published variants and the errors users see for bad files."""
import collections
import os

import numpy as np
import pytest
import torch

from hydranet_ros.model import (build_hydranet, CheckpointError, HydraNetConfig, load_hydranet,
                                local_to_upstream, save_hydranet)


def _outputs(model, size=(64, 96)):
    torch.manual_seed(0)
    with torch.inference_mode():
        return model.eval()(torch.randn(1, 3, *size))


def _assert_same_outputs(first, second, tolerance=1e-5):
    assert first.keys() == second.keys()
    for task in first:
        assert torch.allclose(first[task], second[task], atol=tolerance), task


@pytest.fixture(scope='module')
def upstream_state(nyud_checkpoint):
    return torch.load(nyud_checkpoint, weights_only=True)['state_dict']


def test_published_checkpoint_picks_preset(nyud_checkpoint, kitti_checkpoint):
    nyud = load_hydranet(nyud_checkpoint)
    kitti = load_hydranet(kitti_checkpoint)
    assert (nyud.config.preset, nyud.config.num_classes) == ('nyud40', 40)
    assert nyud.config.class_names[:3] == ('wall', 'floor', 'cabinet')
    assert (kitti.config.preset, kitti.config.class_names[0]) == ('kitti6', 'sky')
    assert not nyud.training


def test_module_prefix_and_old_batchnorm_counters(tmp_path, upstream_state, nyud_checkpoint):
    old = collections.OrderedDict(
        (f'module.{key}', value) for key, value in upstream_state.items()
        if not key.endswith('num_batches_tracked'))
    path = tmp_path / 'old_style.ckpt'
    torch.save({'state_dict': old}, path)
    _assert_same_outputs(_outputs(load_hydranet(path)), _outputs(load_hydranet(nyud_checkpoint)))


def _variant(upstream_state, num_classes, normals):
    state = collections.OrderedDict(upstream_state)
    generator = torch.Generator().manual_seed(num_classes)
    state['segm.weight'] = torch.randn(num_classes, 256, 3, 3, generator=generator) * 0.02
    state['segm.bias'] = torch.zeros(num_classes)
    if normals:
        state['pre_normal.weight'] = torch.randn(256, 1, 1, 1, generator=generator)
        state['normal.weight'] = torch.randn(3, 256, 3, 3, generator=generator) * 0.02
        state['normal.bias'] = torch.zeros(3)
    return state


@pytest.mark.parametrize('num_classes,normals,preset', [
    (46, False, 'nyud_kitti46'), (40, True, 'nyud40_three'), (13, False, '')])
def test_variants_infer_classes_and_tasks(tmp_path, upstream_state, num_classes, normals,
                                          preset):
    path = tmp_path / 'variant.ckpt'
    torch.save({'state_dict': _variant(upstream_state, num_classes, normals)}, path)
    model = load_hydranet(path)
    assert model.config.num_classes == num_classes
    assert ('normals' in model.config.tasks) == normals
    assert model.config.preset == preset
    outputs = _outputs(model)
    assert outputs['segm'].shape[1] == num_classes
    assert ('normals' in outputs) == normals


def test_project_format_round_trip_keeps_config(tmp_path):
    config = HydraNetConfig(num_classes=3, class_names=('a', 'b', 'c'),
                            class_colors=((1, 2, 3), (4, 5, 6), (7, 8, 9)), max_depth_m=20.0,
                            notes={'data': 'unit test'})
    model = build_hydranet(config).eval()
    path = tmp_path / 'model.pt'
    save_hydranet(model, path, extra={'epoch': 3})
    loaded = load_hydranet(path)
    assert loaded.config == config
    assert loaded.checkpoint_extra == {'epoch': 3}
    _assert_same_outputs(_outputs(model), _outputs(loaded))
    save_hydranet(model, tmp_path / 'half.pt', half=True)
    assert os.path.getsize(tmp_path / 'half.pt') < 0.6 * os.path.getsize(path)
    half = _outputs(load_hydranet(tmp_path / 'half.pt'))
    _assert_same_outputs(_outputs(model), half, tolerance=5e-2)


def test_upstream_export_loads_back(tmp_path):
    model = build_hydranet(HydraNetConfig(num_classes=6)).eval()
    path = tmp_path / 'upstream.ckpt'
    torch.save({'state_dict': local_to_upstream(model.state_dict())}, path)
    _assert_same_outputs(_outputs(model), _outputs(load_hydranet(path)))


class _Payload:
    """Pickles into a call that would create a file if it were ever executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_pickled_code_is_refused_without_running(tmp_path):
    marker = tmp_path / 'executed'
    path = tmp_path / 'hostile.ckpt'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'payload': _Payload(str(marker))}, path)
    with pytest.raises(CheckpointError, match='refused'):
        load_hydranet(path)
    assert not marker.exists()


@pytest.mark.parametrize('content,message', [
    (None, 'does not exist'),
    (b'', 'empty'),
    (b'this is not a checkpoint at all' * 10, 'is not a PyTorch checkpoint: it is a text file'),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / 'model.ckpt'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as error:
        load_hydranet(path)
    assert str(path) in str(error.value)


def test_truncated_file(tmp_path, nyud_checkpoint):
    path = tmp_path / 'truncated.ckpt'
    path.write_bytes(nyud_checkpoint.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match='truncated'):
        load_hydranet(path)


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match='directory'):
        load_hydranet(tmp_path)


def test_wrong_content(tmp_path):
    torch.save(torch.zeros(3), tmp_path / 'tensor.pt')
    with pytest.raises(CheckpointError, match='expected a dict'):
        load_hydranet(tmp_path / 'tensor.pt')
    torch.save({'weights': {'a': 1}}, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='no state_dict'):
        load_hydranet(tmp_path / 'other.pt')
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}}, tmp_path / 'other_net.pt')
    with pytest.raises(CheckpointError, match='not a HydraNet'):
        load_hydranet(tmp_path / 'other_net.pt')


def test_unknown_keys_and_shape_mismatches_are_listed(tmp_path, upstream_state):
    state = collections.OrderedDict(upstream_state)
    state['extra_layer.weight'] = torch.zeros(1)
    state['conv8.weight'] = torch.zeros(256, 300, 1, 1)
    path = tmp_path / 'bad.ckpt'
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointError) as error:
        load_hydranet(path)
    text = str(error.value)
    assert 'unknown key(s): extra_layer.weight' in text
    assert 'decoder.reduce8.weight: file (256, 300, 1, 1) vs network (256, 320, 1, 1)' in text


def test_preset_that_disagrees_with_the_weights(nyud_checkpoint):
    with pytest.raises(CheckpointError, match="preset 'kitti6' expects 6 classes"):
        load_hydranet(nyud_checkpoint, preset='kitti6')
    with pytest.raises(ValueError, match='known presets'):
        load_hydranet(nyud_checkpoint, preset='cityscapes')


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match='depth range'):
        HydraNetConfig(min_depth_m=5.0, max_depth_m=1.0)
    with pytest.raises(ValueError, match='class names'):
        HydraNetConfig(num_classes=2, class_names=('a',))
    with pytest.raises(ValueError, match='unknown task'):
        HydraNetConfig(tasks=('segm', 'depth', 'edges'))
    assert np.isfinite(HydraNetConfig().max_depth_m)
