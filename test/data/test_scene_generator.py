"""The street-scene generator: exact depth for known geometry, labels, reproducibility, speed."""
import time

import numpy as np
import pytest

from hydranet_ros.data import classes
from hydranet_ros.data.scene_generator import (FACADE, Lighting, Primitive, StreetLayout,
                                               StreetSceneGenerator, box)

HEIGHT, WIDTH = 48, 160


@pytest.fixture(scope='module')
def generator():
    return StreetSceneGenerator(seed=3, height=HEIGHT, width=WIDTH)


def _plain_layout(primitives=(), road=True):
    return StreetLayout(primitives=list(primitives), road=road,
                        lighting=Lighting(noise_sigma=0.0))


def test_ground_plane_depth_is_f_h_over_row_offset(generator):
    scene = generator.render_layout(_plain_layout())
    focal, cy = generator.K[1, 1], generator.K[1, 2]
    rows = np.arange(HEIGHT)
    below = rows > cy
    expected = focal * generator.camera_height_m / (rows[below] - cy)
    # Every pixel of a row below the horizon sees the road at the same depth.
    assert np.allclose(scene.depth_m[below], expected[:, None], rtol=1e-6)
    assert (scene.labels[below] == classes.ROAD).all()
    # Above the horizon the ray never meets the road: sky, infinite depth.
    assert np.isinf(scene.depth_m[~below]).all()
    assert (scene.labels[~below] == classes.SKY).all()


def test_fronto_parallel_wall_has_constant_depth(generator):
    distance_m = 12.5
    wall = box((-500.0, 500.0), (-500.0, 500.0), (distance_m, distance_m + 1.0),
               classes.BUILDING, FACADE)
    scene = generator.render_layout(_plain_layout([wall], road=False))
    assert np.allclose(scene.depth_m, distance_m, rtol=1e-6)
    assert (scene.labels == classes.BUILDING).all()


def test_box_and_sphere_project_where_the_pinhole_model_says(generator):
    # A car-sized box 10 m ahead, 2 m to the right, and a sphere in front of it.
    car = box((1.0, 3.0), (0.0, generator.camera_height_m), (10.0, 14.0), classes.CAR, FACADE)
    crown = Primitive((-2.0, -1.0, 8.0), (1.0,), classes.VEGETATION, FACADE)
    scene = generator.render_layout(_plain_layout([car, crown]))
    fx, cx, cy = generator.K[0, 0], generator.K[0, 2], generator.K[1, 2]
    u = int(round(cx + fx * 2.0 / 10.0))
    v = int(round(cy + generator.K[1, 1] * 0.5 / 10.0))
    assert scene.labels[v, u] == classes.CAR
    assert scene.depth_m[v, u] == pytest.approx(10.0, rel=1e-6)
    # Sphere centre: depth of the front surface is z - r along the optical axis.
    u = int(round(cx + fx * -2.0 / 8.0))
    v = int(round(cy + generator.K[1, 1] * -1.0 / 8.0))
    assert scene.labels[v, u] == classes.VEGETATION
    assert scene.depth_m[v, u] == pytest.approx(7.0, abs=0.05)


def test_rendering_is_reproducible_and_seeded(generator):
    first = generator.render(5)
    again = StreetSceneGenerator(seed=3, height=HEIGHT, width=WIDTH).render(5)
    other_seed = StreetSceneGenerator(seed=4, height=HEIGHT, width=WIDTH).render(5)
    assert np.array_equal(first.image_rgb, again.image_rgb)
    assert np.array_equal(first.labels, again.labels)
    assert np.array_equal(first.depth_m, again.depth_m)
    assert not np.array_equal(first.labels, other_seed.labels)
    assert not np.array_equal(first.image_rgb, generator.render(6).image_rgb)


def test_random_scenes_are_valid_and_varied(generator):
    scenes = [generator.render(index) for index in range(8)]
    for scene in scenes:
        assert scene.image_rgb.shape == (HEIGHT, WIDTH, 3) and scene.image_rgb.dtype == np.uint8
        assert scene.depth_m.dtype == np.float32 and scene.labels.dtype == np.uint8
        assert scene.labels.max() < len(classes.KITTI6_CLASS_NAMES)
        # Sky and only sky has no depth; everything else is in front of the camera.
        sky = scene.labels == classes.SKY
        assert np.isinf(scene.depth_m[sky]).all()
        assert (scene.depth_m[~sky] > 0).all() and np.isfinite(scene.depth_m[~sky]).all()
    labels = np.concatenate([s.labels.ravel() for s in scenes])
    fractions = np.bincount(labels, minlength=6) / labels.size
    assert (fractions > 0.01).all(), f'every class should appear: {fractions}'
    # Not colour-coded: the same class takes many colours across scenes.
    building_colours = [s.image_rgb[s.labels == classes.BUILDING].mean(0) for s in scenes]
    assert np.ptp(np.array(building_colours), axis=0).max() > 20


def test_rendering_is_fast_enough_for_thousands_of_frames():
    generator = StreetSceneGenerator(seed=0, height=96, width=320)
    generator.render(0)
    start = time.perf_counter()
    for index in range(1, 6):
        generator.render(index)
    seconds_per_frame = (time.perf_counter() - start) / 5
    assert seconds_per_frame < 0.5, f'{seconds_per_frame:.3f} s per 96x320 frame'
