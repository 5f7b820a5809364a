"""The picture of docs/node.md: the labelled cloud of a shipped sample, coloured by class.

Runs the bundled model on the KITTI sample with the node's default depth rules and the KITTI
camera's focal length, back-projects the published depth as ``depth/points`` does, and draws
the points from above and behind the camera with matplotlib (sky has no depth, so no points).

Example::

    python -m dev.docs.cloud_picture --out docs/points_kitti.png
"""
import argparse
import sys
from typing import List, Optional

import numpy as np

import cv2
import matplotlib
matplotlib.use('Agg')
from matplotlib import pyplot  # noqa: E402

from hydranet_ros.engine import InferenceEngine  # noqa: E402
from hydranet_ros.engine.depth_rules import apply_depth_rules, depth_rules  # noqa: E402
from hydranet_ros.engine.geometry import build_cloud, PinholeIntrinsics  # noqa: E402
from hydranet_ros.engine.metric_scale import intrinsics_scale, training_camera  # noqa: E402
from hydranet_ros.model.presets import KITTI_FOCAL_LENGTH_PX  # noqa: E402
from hydranet_ros.tools.node_processes import PACKAGE_DIR  # noqa: E402

SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'kitti_000099.png'
DECIMATION = 3
MAX_RANGE_M = 45.0
ELEVATION_DEG = 28.0
AZIMUTH_DEG = -70.0
FIGURE_SIZE_IN = (8.0, 5.0)
ZOOM = 1.35
DPI = 90
POINT_SIZE = 0.6


def cloud_of_sample(path: str) -> tuple:
    """Return the pcl-field cloud of the sample, the engine, and the depth scale applied."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f'cannot read {path}')
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    engine = InferenceEngine(None, device='cpu', backend='torch')
    prediction = engine.infer(rgb, with_overlay=False)
    scale = intrinsics_scale(training_camera(engine.config), KITTI_FOCAL_LENGTH_PX,
                             KITTI_FOCAL_LENGTH_PX, (height, width), engine.plan.input_size)
    apply_depth_rules(prediction, depth_rules(engine.config, scale=scale))
    intrinsics = PinholeIntrinsics(KITTI_FOCAL_LENGTH_PX, KITTI_FOCAL_LENGTH_PX,
                                   (width - 1) / 2.0, (height - 1) / 2.0)
    cloud = build_cloud(prediction.depth, intrinsics, prediction.labels,
                        prediction.confidence, rgb, decimation=DECIMATION, organized=False)
    return cloud, engine, scale


def draw(cloud: np.ndarray, engine: InferenceEngine, scale: float, out: str) -> None:
    """Draw the points in the camera's frame (x right, z forward, y down shown as up)."""
    cloud = cloud[cloud['z'] <= MAX_RANGE_M]
    colors = engine.colors[cloud['label']] / 255.0
    figure = pyplot.figure(figsize=FIGURE_SIZE_IN, dpi=DPI)
    axes = figure.add_subplot(projection='3d')
    axes.scatter(cloud['x'], cloud['z'], -cloud['y'], c=colors, s=POINT_SIZE, linewidths=0,
                 depthshade=False)
    axes.view_init(elev=ELEVATION_DEG, azim=AZIMUTH_DEG)
    axes.set_xlabel('x (m, right)')
    axes.set_ylabel('z (m, forward)')
    axes.set_zlabel('-y (m, up)')
    aspect = (np.ptp(cloud['x']), np.ptp(cloud['z']), np.ptp(cloud['y']))
    axes.set_box_aspect(aspect, zoom=ZOOM)
    names = engine.config.class_names
    present = sorted(set(int(v) for v in np.unique(cloud['label'])))
    handles = [pyplot.Line2D([], [], marker='o', linestyle='', color=engine.colors[i] / 255.0,
                             label=names[i]) for i in present]
    axes.legend(handles=handles, loc='upper left', fontsize=8, frameon=False)
    axes.set_title(f'depth/points of the KITTI sample (bundled model, every {DECIMATION}rd '
                   f'pixel, depth x{scale:.2f} from K, sky NaN)', fontsize=9)
    figure.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.93)
    figure.savefig(out)
    pyplot.close(figure)


def main(argv: Optional[List[str]] = None) -> int:
    """Render the picture; print where it went."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--image', default=str(SAMPLE), help='picture (default: KITTI sample)')
    parser.add_argument('--out', default='points_kitti.png', help='PNG to write')
    args = parser.parse_args(argv)
    cloud, engine, scale = cloud_of_sample(args.image)
    draw(cloud, engine, scale, args.out)
    print(f'{cloud.size} points, depth scale {scale:.3f}: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
