"""Depth a planner can trust: invalid classes, confidence, range, and metric scale from K."""
import numpy as np
import pytest

from hydranet_ros.data.scene_generator import FOCAL_LENGTH_PER_WIDTH, StreetSceneGenerator
from hydranet_ros.engine import InferenceEngine
from hydranet_ros.engine.depth_rules import (apply_depth_rules, class_ids, depth_rules,
                                             DepthRules)
from hydranet_ros.engine.metric_scale import (focal_mismatch, intrinsics_scale,
                                              TrainingCamera, training_camera)
from hydranet_ros.engine.prediction import Prediction
from hydranet_ros.model import get_preset, HydraNetConfig

SCENE_FRAMES = 6
SCENE_SEED = 5  # neither the training (0, 1) nor the held-out (2) seed of the bundled model
FOCAL_FACTOR = 1.5


def _prediction():
    depth = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, np.nan]], np.float32)
    labels = np.array([[0, 1, 2, 3, 4, 5]], np.uint8)
    confidence = np.array([[0.9, 0.2, 0.9, 0.4, 0.9, 0.9]], np.float32)
    return Prediction(depth=depth, labels=labels, confidence=confidence)


def test_sky_and_unlabelled_pixels_get_nan_depth_by_default():
    """The default rules of a model with a sky class: sky is NaN, nothing else changes."""
    config = get_preset('kitti6')
    prediction = apply_depth_rules(_prediction(), depth_rules(config))
    assert np.isnan(prediction.depth[0, [0, 5]]).all()
    np.testing.assert_array_equal(prediction.depth[0, 1:5], [2.0, 3.0, 4.0, 5.0])
    nyud = depth_rules(get_preset('nyud40'))
    assert nyud.invalid_class_ids == ()  # NYUDv2 has no sky
    assert depth_rules(get_preset('nyud_kitti46')).invalid_class_ids == (40,)


def test_rules_apply_in_order_threshold_scale_classes_confidence_range():
    """Thresholded labels become unlabelled and lose their depth; the range is in scaled m."""
    rules = DepthRules(invalid_class_ids=(4,), min_confidence=0.3, min_depth_m=2.5,
                       max_depth_m=7.0, confidence_threshold=0.25, scale=1.5)
    prediction = apply_depth_rules(_prediction(), rules)
    assert prediction.labels.tolist() == [[0, 255, 2, 3, 4, 5]]
    # 1.5 (< 2.5), unlabelled, 4.5, 6.0, class 4, NaN
    expected = [np.nan, np.nan, 4.5, 6.0, np.nan, np.nan]
    np.testing.assert_array_equal(prediction.depth[0], np.float32(expected))
    off = apply_depth_rules(_prediction(), DepthRules())
    np.testing.assert_array_equal(off.depth, _prediction().depth)
    wide = _prediction()
    wide.labels = wide.labels.astype(np.uint16)
    wide.labels[0, 2] = 65535
    apply_depth_rules(wide, DepthRules(invalid_class_ids=(0,)))
    assert np.isnan(wide.depth[0, [0, 2]]).all() and wide.depth[0, 1] == 2.0


def test_class_names_resolve_case_insensitively_and_unknown_ones_are_reported():
    """Names of the label map (or class_<id>) map to ids; others come back as unknown."""
    config = get_preset('kitti6')
    assert class_ids(config, ['Sky', 'car', 'tree', '']) == ((0, 5), ('tree',))
    assert class_ids(HydraNetConfig(num_classes=3), ['class_2']) == ((2,), ())


def test_training_cameras_of_the_models():
    """Published presets cite their datasets' cameras; the bundled model its generator's."""
    nyud = training_camera(get_preset('nyud40'))
    assert nyud.focal_length_px == pytest.approx(518.8579) and nyud.image_size == (480, 640)
    kitti = training_camera(get_preset('kitti6'))
    assert kitti.focal_length_px == pytest.approx(721.5377) and kitti.image_size == (375, 1242)
    assert training_camera(get_preset('nyud_kitti46')) is None
    bundled = training_camera(InferenceEngine(None, device='cpu', backend='torch').config)
    assert bundled.focal_length_px == pytest.approx(FOCAL_LENGTH_PER_WIDTH * 320)
    assert bundled.image_size == (96, 320)
    assert training_camera(HydraNetConfig()) is None


def test_intrinsics_scale_compares_focal_lengths_at_the_network_input():
    """Camera focal converted to the network input; none known: no scaling."""
    camera = TrainingCamera(185.6, (96, 320))
    # A 640x480 camera with fx = fy = 556.8 seen at 96x320: 278.4 / 185.6 and 111.4 / 185.6.
    scale = intrinsics_scale(camera, 556.8, 556.8, (480, 640), (96, 320))
    assert scale == pytest.approx(0.5 * (556.8 * 0.5 + 556.8 * 0.2) / 185.6)
    assert intrinsics_scale(camera, 278.4, 278.4, (96, 320), None) == pytest.approx(1.5)
    assert intrinsics_scale(None, 500.0, 500.0, (480, 640), None) == 1.0
    assert focal_mismatch(1.31) and focal_mismatch(0.69) and not focal_mismatch(1.29)


def _abs_rel(engine, generator, scale):
    errors = []
    for index in range(SCENE_FRAMES):
        scene = generator.render(index)
        prediction = engine.infer(scene.image_rgb, with_overlay=False)
        apply_depth_rules(prediction, depth_rules(engine.config, scale=scale))
        truth = scene.depth_m
        valid = np.isfinite(truth) & np.isfinite(prediction.depth) & (truth > 0)
        errors.append(np.abs(prediction.depth[valid] - truth[valid]) / truth[valid])
    return float(np.mean(np.concatenate(errors)))


def test_intrinsics_scaling_lowers_abs_rel_for_a_longer_focal_length():
    """Scenes rendered with 1.5x the training focal length: scaling by K beats no scaling."""
    engine = InferenceEngine(None, device='cpu', backend='torch', threads=1)
    trained = training_camera(engine.config)
    height, width = trained.image_size
    focal = FOCAL_FACTOR * trained.focal_length_px
    generator = StreetSceneGenerator(seed=SCENE_SEED, height=height, width=width,
                                     focal_length_px=focal)
    scale = intrinsics_scale(trained, generator.K[0, 0], generator.K[1, 1], (height, width),
                             engine.plan.input_size)
    assert scale == pytest.approx(FOCAL_FACTOR)
    unscaled = _abs_rel(engine, generator, 1.0)
    scaled = _abs_rel(engine, generator, scale)
    print(f'AbsRel on {SCENE_FRAMES} scenes at {FOCAL_FACTOR}x the training focal length '
          f'({focal:.1f} px at {height}x{width}): no scaling {unscaled:.3f}, intrinsics '
          f'scaling {scaled:.3f}')
    assert scaled < unscaled
