"""The bundled default model meets its quality bar on held-out generated scenes."""
import os

import pytest
import torch

from hydranet_ros.data import classes
from hydranet_ros.data.scene_store import StreetSceneDataset
from hydranet_ros.engine.default_model import default_model_path
from hydranet_ros.model import load_hydranet
from hydranet_ros.tools.evaluate import HELD_OUT_SCENE_COUNT, HELD_OUT_SCENE_SEED
from hydranet_ros.training.evaluation import ModelPredictor, evaluate

MAX_SIZE_BYTES = 7 * 1024 * 1024
MIN_MIOU = 0.80
MAX_ABS_REL = 0.10


@pytest.fixture(scope='module')
def model():
    path = default_model_path()
    if not os.path.exists(path):
        pytest.fail(f'the bundled default model {path} is missing')
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield load_hydranet(path)
    torch.set_num_threads(threads)


def test_default_model_is_small_and_self_describing(model):
    assert os.path.getsize(default_model_path()) < MAX_SIZE_BYTES
    config = model.config
    assert config.class_names == classes.KITTI6_CLASS_NAMES
    assert config.class_colors == classes.KITTI6_CLASS_COLORS
    assert config.max_depth_m == classes.KITTI_MAX_DEPTH_M
    assert config.notes['image_size'] == [96, 320]
    assert model.checkpoint_extra['training']['settings']['notes']['command'].startswith(
        'hydranet-train')


def test_default_model_quality_on_held_out_scenes(model):
    height, width = model.config.notes['image_size']
    scenes = StreetSceneDataset(HELD_OUT_SCENE_COUNT, HELD_OUT_SCENE_SEED, height, width)
    result = evaluate(ModelPredictor(model), scenes, model.config.num_classes,
                      model.config.class_names, model.config.min_depth_m,
                      model.config.max_depth_m, batch_size=16)
    assert result.segmentation['miou'] >= MIN_MIOU, result.segmentation
    assert result.depth['abs_rel'] <= MAX_ABS_REL, result.depth
