"""Dataset loaders: NYUDv2, KITTI and the generic folder layout, asymmetric annotations."""
import cv2
import numpy as np
import pytest
import torch

from conftest import require_shared, SAMPLES_DIR
from hydranet_ros.data import classes
from hydranet_ros.data.datasets import colors_to_ids, open_dataset
from hydranet_ros.data.scene_store import SceneStoreDataset, write_scene_split
from hydranet_ros.data.tensor_dataset import TensorDataset
from hydranet_ros.data.transforms import training_transform


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = array if array.ndim == 2 else cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), image)


def test_nyud_samples_in_the_upstream_flat_layout():
    root = require_shared(SAMPLES_DIR / 'nyud_joint')
    dataset = open_dataset('nyud', str(root), split='')
    assert len(dataset) == 1 and dataset.class_names == classes.NYUD40_CLASS_NAMES
    sample = dataset[0]
    assert sample.name == '000464' and sample.image.shape == (480, 640, 3)
    raw = cv2.imread(str(root / 'depth_gt_000464.png'), cv2.IMREAD_UNCHANGED)
    known = raw > 0
    assert np.allclose(sample.depth_m[known], raw[known] / 5000.0)
    assert np.isnan(sample.depth_m[~known]).all()
    # README: 1.52 - 5.23 m.
    assert 1.5 < np.nanmin(sample.depth_m) and np.nanmax(sample.depth_m) < 5.3
    labels = cv2.imread(str(root / 'segm_gt_000464.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(sample.labels, labels)
    assert set(np.unique(sample.labels)) <= set(range(40)) | {255}


def test_kitti_colour_coded_labels_map_to_ids():
    root = require_shared(SAMPLES_DIR / 'kitti_joint')
    sample = open_dataset('kitti', str(root), split='')[0]
    assert sample.depth_m is None  # KITTI semantics come without depth: labels only.
    assert sample.labels.shape == (370, 1226)
    rgb = cv2.cvtColor(cv2.imread(str(root / 'segm_gt_000099.png')), cv2.COLOR_BGR2RGB)
    for class_id, colour in enumerate(classes.KITTI6_CLASS_COLORS):
        assert np.array_equal(sample.labels == class_id, (rgb == colour).all(-1))
    assert (sample.labels == classes.ROAD).mean() > 0.1


def test_colors_to_ids_ignores_unknown_colours():
    rgb = np.array([[[128, 64, 128], [1, 2, 3]], [[0, 0, 0], [64, 0, 128]]], np.uint8)
    labels = colors_to_ids(rgb, classes.KITTI6_CLASS_COLORS)
    assert labels.tolist() == [[2, 255], [255, 5]]


@pytest.fixture()
def folder_dataset(tmp_path):
    (tmp_path / 'classes.yaml').write_text(
        'classes:\n  - {name: floor, color: [10, 20, 30]}\n  - {name: wall, color: [40, 50, 60]}\n'
        'max_depth_m: 20\n')
    split = tmp_path / 'train'
    rng = np.random.default_rng(1)
    for stem in ('a', 'b', 'c'):
        _write_png(split / 'rgb' / f'{stem}.png', rng.integers(0, 255, (6, 8, 3), np.uint8))
    depth_mm = np.full((6, 8), 2500, np.uint16)
    depth_mm[0, 0] = 0
    _write_png(split / 'depth' / 'a.png', depth_mm)
    labels = np.ones((6, 8), np.uint8)
    labels[1, 1] = 255
    labels[2, 2] = 7  # not a class of classes.yaml
    _write_png(split / 'labels' / 'a.png', labels)
    (split / 'depth').mkdir(exist_ok=True)
    metres = np.full((6, 8), 3.25, np.float32)
    metres[5, 7] = np.inf
    np.save(split / 'depth' / 'b.npy', metres)
    _write_png(split / 'labels' / 'c.png', np.zeros((6, 8), np.uint8))
    return tmp_path


def test_generic_folder_layout(folder_dataset):
    dataset = open_dataset('folder', str(folder_dataset), 'train')
    assert dataset.class_names == ('floor', 'wall')
    assert dataset.class_colors == ((10, 20, 30), (40, 50, 60))
    assert dataset.max_depth_m == 20.0
    full, depth_only, labels_only = dataset[0], dataset[1], dataset[2]
    assert full.depth_m[1, 1] == pytest.approx(2.5) and np.isnan(full.depth_m[0, 0])
    assert full.labels[0, 0] == 1 and full.labels[1, 1] == 255 and full.labels[2, 2] == 255
    assert depth_only.labels is None and depth_only.depth_m[0, 0] == pytest.approx(3.25)
    assert np.isnan(depth_only.depth_m[5, 7])
    assert labels_only.depth_m is None and (labels_only.labels == 0).all()


def test_asymmetric_samples_become_ignore_and_nan_tensors(folder_dataset):
    dataset = TensorDataset(open_dataset('folder', str(folder_dataset), 'train'))
    depth_only, labels_only = dataset[1], dataset[2]
    assert (depth_only['labels'] == 255).all() and not depth_only['has_labels']
    assert torch.isnan(labels_only['depth']).all() and not labels_only['has_depth']
    assert labels_only['has_labels'] and depth_only['has_depth']


def test_folder_without_classes_yaml_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='classes.yaml'):
        open_dataset('folder', str(tmp_path))


def test_scene_store_round_trip(tmp_path):
    meta = write_scene_split(str(tmp_path / 'split'), 3, seed=5, height=32, width=64)
    assert meta['class_names'] == list(classes.KITTI6_CLASS_NAMES)
    stored = SceneStoreDataset(str(tmp_path / 'split'))
    fresh = open_dataset('scenes', None, limit=3, height=32, width=64, seed=5)
    assert len(stored) == 3
    for index in range(3):
        assert np.array_equal(stored[index].image, fresh[index].image)
        assert np.array_equal(stored[index].labels, fresh[index].labels)
        assert np.array_equal(stored[index].depth_m, fresh[index].depth_m)


def test_augmentation_is_reproducible_per_epoch_and_index(tmp_path):
    source = open_dataset('scenes', None, limit=2, height=32, width=64, seed=1)
    dataset = TensorDataset(source, training_transform((24, 48), (0.8, 1.2)), seed=3)
    first = dataset[1]['image']
    assert torch.equal(first, dataset[1]['image'])
    dataset.epoch = 1
    assert not torch.equal(first, dataset[1]['image'])


def test_depth_scale_can_be_overridden(folder_dataset):
    dataset = open_dataset('folder', str(folder_dataset), 'train', depth_scale=500.0)
    assert dataset[0].depth_m[1, 1] == pytest.approx(5.0)
