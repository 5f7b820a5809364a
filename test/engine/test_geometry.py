"""Labelled point clouds from depth: back-projection, field profiles, filters, decimation."""
import numpy as np
import pytest

from hydranet_ros.engine.geometry import (AUTOWARE, CloudFilter, FIELD_PROFILES, PCL,
                                          PinholeIntrinsics, back_project, build_cloud,
                                          pack_rgb, unpack_rgb)

HEIGHT, WIDTH = 48, 64
# A non-centred principal point and different focal lengths per axis.
INTRINSICS = PinholeIntrinsics(fx=55.0, fy=61.5, cx=35.25, cy=20.75)


def _frame(seed: int = 0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 20.0, (HEIGHT, WIDTH)).astype(np.float32)
    depth[:3] = np.nan
    labels = rng.integers(0, 6, (HEIGHT, WIDTH)).astype(np.uint8)
    confidence = rng.random((HEIGHT, WIDTH)).astype(np.float32)
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    return depth, labels, confidence, rgb


def _reference_points(depth, intrinsics, step=1):
    """Back-project pixel by pixel in float64, as depth_image_proc's formula reads."""
    rows, cols = np.mgrid[0:depth.shape[0]:step, 0:depth.shape[1]:step]
    z = depth[rows, cols].astype(np.float64)
    return ((cols - intrinsics.cx) * z / intrinsics.fx,
            (rows - intrinsics.cy) * z / intrinsics.fy, z)


def test_a_plane_at_a_known_distance_comes_back_as_that_plane():
    """A fronto-parallel plane at 4 m and a tilted ground plane y = 1.5 m are recovered."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    wall = np.full((HEIGHT, WIDTH), 4.0, np.float32)
    x, y, z = back_project(wall, INTRINSICS)
    np.testing.assert_allclose(z, 4.0)
    np.testing.assert_allclose(x, (cols - INTRINSICS.cx) * 4.0 / INTRINSICS.fx, rtol=1e-6)
    # A ground plane 1.5 m below the camera (y down): rows below the principal point see it
    # at z = fy * h / (v - cy), the depth a renderer of that plane writes.
    camera_height_m = 1.5
    below = rows > INTRINSICS.cy + 1.0
    ground = np.where(below, INTRINSICS.fy * camera_height_m / (rows - INTRINSICS.cy),
                      np.nan).astype(np.float32)
    x, y, z = back_project(ground, INTRINSICS)
    np.testing.assert_allclose(y[below], camera_height_m, rtol=1e-5)
    assert np.isnan(y[~below]).all()
    # The points lie on the plane: a least-squares fit gives normal (0, 1, 0) at 1.5 m.
    points = np.stack([x[below], y[below], z[below]], axis=1).astype(np.float64)
    centred = points - points.mean(axis=0)
    normal = np.linalg.svd(centred)[2][-1]
    assert abs(abs(normal[1]) - 1.0) < 1e-6
    assert float(points.mean(axis=0) @ normal) * np.sign(normal[1]) == pytest.approx(1.5)


def test_pcl_fields_are_the_back_projection_with_labels_colour_and_confidence():
    """Organised (H, W), NaN where depth is NaN, every field as the formula and inputs say."""
    depth, labels, confidence, rgb = _frame()
    cloud = build_cloud(depth, INTRINSICS, labels, confidence, rgb, PCL)
    assert cloud.shape == (HEIGHT, WIDTH) and cloud.dtype == FIELD_PROFILES[PCL]
    assert cloud.dtype.names == ('x', 'y', 'z', 'rgb', 'label', 'confidence')
    x, y, z = _reference_points(depth, INTRINSICS)
    for name, expected in (('x', x), ('y', y), ('z', z)):
        np.testing.assert_allclose(cloud[name], expected, rtol=1e-6, atol=0)
    assert np.array_equal(np.isnan(cloud['x']), np.isnan(depth))
    assert np.array_equal(cloud['label'], labels.astype(np.uint32))
    np.testing.assert_array_equal(cloud['confidence'], confidence)
    bits = cloud['rgb'].view(np.uint32)
    expected_bits = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
        | rgb[..., 2]
    assert np.array_equal(bits, expected_bits)
    assert np.array_equal(unpack_rgb(cloud['rgb']), rgb)
    assert np.array_equal(pack_rgb(rgb), expected_bits)


def test_autoware_fields_and_a_16_bit_label_map():
    """Fields x y z, class_id uint8 and probability float32, 4-byte aligned (20 bytes)."""
    depth, labels, confidence, _ = _frame(1)
    cloud = build_cloud(depth, INTRINSICS, labels, confidence, None, AUTOWARE)
    assert cloud.dtype.names == ('x', 'y', 'z', 'class_id', 'probability')
    assert cloud.dtype.itemsize == 20 and cloud.dtype.fields['probability'][1] == 16
    assert cloud['class_id'].dtype == np.uint8
    assert np.array_equal(cloud['class_id'], labels)
    np.testing.assert_array_equal(cloud['probability'], confidence)
    wide = labels.astype(np.uint16) * 100
    cloud = build_cloud(depth, INTRINSICS, wide, confidence, None, AUTOWARE)
    assert np.array_equal(cloud['class_id'], np.minimum(wide, 255))
    pcl = build_cloud(depth, INTRINSICS, wide, confidence, None, PCL)
    assert np.array_equal(pcl['label'], wide) and not pcl['rgb'].view(np.uint32).any()


@pytest.mark.parametrize('decimation', [2, 3, 5])
def test_decimation_keeps_every_nth_pixel_of_every_nth_row(decimation):
    """ceil(H/d) x ceil(W/d) points, those of pixels (d i, d j), with their own rays."""
    depth, labels, confidence, rgb = _frame(2)
    cloud = build_cloud(depth, INTRINSICS, labels, confidence, rgb, PCL, decimation)
    assert cloud.shape == (-(-HEIGHT // decimation), -(-WIDTH // decimation))
    x, y, z = _reference_points(depth, INTRINSICS, decimation)
    np.testing.assert_allclose(cloud['x'], x, rtol=1e-6)
    np.testing.assert_allclose(cloud['y'], y, rtol=1e-6)
    assert np.array_equal(cloud['label'], labels[::decimation, ::decimation])
    with pytest.raises(ValueError, match='decimation'):
        build_cloud(depth, INTRINSICS, labels, confidence, rgb, PCL, 0)


def test_class_and_depth_filters_make_nan_points_or_drop_them():
    """keep/drop by class id and a depth window: NaN when organised, absent when not."""
    depth, labels, confidence, rgb = _frame(3)
    keep = CloudFilter(keep_ids=(1, 2), drop_ids=(2,), min_depth_m=2.0, max_depth_m=15.0)
    original = depth.copy()
    cloud = build_cloud(depth, INTRINSICS, labels, confidence, rgb, PCL, cloud_filter=keep)
    np.testing.assert_array_equal(depth, original)  # the depth image itself is left alone
    with np.errstate(invalid='ignore'):
        kept = (labels == 1) & (depth >= 2.0) & (depth <= 15.0)
    assert cloud.shape == depth.shape
    assert np.array_equal(np.isfinite(cloud['z']), kept)
    assert np.isnan(cloud['x'][~kept]).all() and np.isnan(cloud['y'][~kept]).all()
    assert np.array_equal(cloud['label'], labels)  # the grid keeps every pixel's label
    flat = build_cloud(depth, INTRINSICS, labels, confidence, rgb, PCL, cloud_filter=keep,
                       organized=False)
    assert flat.shape == (int(kept.sum()),)
    assert (flat['label'] == 1).all() and np.isfinite(flat['z']).all()
    np.testing.assert_array_equal(flat['z'], depth[kept])
    drop = CloudFilter(drop_ids=(0, 5))
    cloud = build_cloud(depth, INTRINSICS, labels, confidence, rgb, AUTOWARE, 2, drop, False)
    assert not np.isin(cloud['class_id'], (0, 5)).any() and cloud.size > 0


def test_bad_inputs_are_refused_with_the_reason():
    """Shapes that do not match and unknown profiles."""
    depth, labels, confidence, rgb = _frame()
    with pytest.raises(ValueError, match='shape of depth'):
        build_cloud(depth, INTRINSICS, labels[:-1], confidence, rgb)
    with pytest.raises(ValueError, match='pcl, autoware'):
        build_cloud(depth, INTRINSICS, labels, confidence, rgb, 'xyzi')
