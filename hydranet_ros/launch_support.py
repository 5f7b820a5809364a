"""Helpers for launch/perception.launch.py: camera drivers, parameters, transport profile.

Nothing here imports launch or rclpy, so the choices the launch file makes are testable anywhere.
"""
from dataclasses import dataclass, field
import os
import re
import shlex
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

CAMERA_CHOICES = ('none', 'usb_cam', 'v4l2_camera', 'realsense2_camera')
BOOL_CHOICES = ('true', 'false')
# Fast DDS 3.x (Kilted and later) reads the first, 2.x (Humble, Jazzy) the second; 3.x warns
# that the second is deprecated when it is set.
FASTDDS_3_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
FASTDDS_2_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'
PROFILE_VARIABLES = (FASTDDS_3_VARIABLE, FASTDDS_2_VARIABLE)
CAMERA_FRAME_ID = 'camera_optical_frame'
CAMERA_WIDTH_PX = 640
CAMERA_HEIGHT_PX = 480
CAMERA_RATE_HZ = 30
STOP_WITH_LAUNCH_MODULE = 'hydranet_ros.stop_with_launch'
CAMERA_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*')


@dataclass(frozen=True)
class NodeSpec:
    """What the launch file needs to start one node."""

    package: str
    executable: str
    name: str
    parameters: List[dict] = field(default_factory=list)
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    arguments: List[str] = field(default_factory=list)


def parse_bool(text: str) -> bool:
    """Return the boolean of a launch argument ('true'/'false', any case)."""
    value = text.strip().lower()
    if value not in BOOL_CHOICES:
        raise ValueError(f"expected 'true' or 'false', got '{text}'")
    return value == 'true'


def camera_driver(camera: str, image_topic: str, camera_info_topic: str,
                  video_device: str, use_sim_time: bool) -> Optional[NodeSpec]:
    """Return the driver node publishing on image_topic and camera_info_topic, or None."""
    if camera not in CAMERA_CHOICES:
        raise ValueError(f"unknown camera '{camera}', expected one of {', '.join(CAMERA_CHOICES)}")
    common = {'use_sim_time': use_sim_time}
    if camera == 'usb_cam':
        return NodeSpec(
            'usb_cam', 'usb_cam_node_exe', 'usb_cam',
            [{**common, 'video_device': video_device, 'frame_id': CAMERA_FRAME_ID,
              'image_width': CAMERA_WIDTH_PX, 'image_height': CAMERA_HEIGHT_PX,
              'framerate': float(CAMERA_RATE_HZ), 'pixel_format': 'yuyv2rgb'}],
            [('image_raw', image_topic), ('camera_info', camera_info_topic)])
    if camera == 'v4l2_camera':
        return NodeSpec(
            'v4l2_camera', 'v4l2_camera_node', 'v4l2_camera',
            [{**common, 'video_device': video_device, 'camera_frame_id': CAMERA_FRAME_ID,
              'image_size': [CAMERA_WIDTH_PX, CAMERA_HEIGHT_PX], 'output_encoding': 'rgb8'}],
            [('image_raw', image_topic), ('camera_info', camera_info_topic)])
    if camera == 'realsense2_camera':
        # Colour only: the network estimates depth, the sensor's own depth stream stays off.
        profile = f'{CAMERA_WIDTH_PX},{CAMERA_HEIGHT_PX},{CAMERA_RATE_HZ}'
        return NodeSpec(
            'realsense2_camera', 'realsense2_camera_node', 'realsense2_camera',
            [{**common, 'enable_color': True, 'enable_depth': False,
              'rgb_camera.color_profile': profile, 'rgb_camera.profile': profile}],
            [('~/color/image_raw', image_topic), ('~/color/camera_info', camera_info_topic)])
    return None


def demo_source(image_topic: str, camera_info_topic: str, use_sim_time: bool,
                camera: str = '') -> NodeSpec:
    """Return the node that publishes the shipped sample scenes as a camera would.

    For a named camera it is ``<camera>_demo_source`` in frame ``<camera>_optical_frame``.
    """
    if not camera:
        return NodeSpec('hydranet_ros', 'hydranet_demo_source', 'hydranet_demo_source',
                        [{'use_sim_time': use_sim_time}],
                        [('image', image_topic), ('camera_info', camera_info_topic)])
    flat = camera.replace('/', '_')
    return NodeSpec('hydranet_ros', 'hydranet_demo_source', f'{flat}_demo_source',
                    [{'use_sim_time': use_sim_time, 'frame_id': f'{flat}_optical_frame'}],
                    [('image', image_topic), ('camera_info', camera_info_topic)])


def rviz(config_path: str, use_sim_time: bool) -> NodeSpec:
    """Return RViz with the display config at config_path."""
    return NodeSpec('rviz2', 'rviz2', 'rviz2', [{'use_sim_time': use_sim_time}],
                    arguments=['-d', config_path])


def stop_with_launch_prefix(python: str, launch_pid: int, executable: str,
                            user_prefix: str = '', user_prefix_filter: str = '') -> str:
    """Return the launch-prefix that makes a node end with the launch process launch_pid.

    A node's own prefix replaces the one given by `ros2 launch --launch-prefix`, so that one
    (for example gdb or valgrind) follows ours, for the executables whose name matches
    --launch-prefix-filter (a regular expression; empty matches all), as launch applies it.
    """
    words = [python, '-m', STOP_WITH_LAUNCH_MODULE, str(launch_pid)]
    if user_prefix.strip() and re.match(user_prefix_filter, os.path.basename(executable)):
        words += shlex.split(user_prefix)
    return shlex.join(words)


def parse_cameras(text: str) -> Tuple[str, ...]:
    """Parse ``front,rear`` into camera names; raise ValueError for a name that is no topic."""
    names = tuple(part.strip().strip('/') for part in text.split(',') if part.strip())
    bad = [name for name in names if not CAMERA_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f'cameras:={text}: {", ".join(bad)} is not a camera name (letters, '
                         f'digits, _ and /, not starting with a digit), e.g. cameras:=front,rear')
    if len(set(names)) != len(names):
        raise ValueError(f'cameras:={text} names a camera twice')
    return names


def camera_topics(camera: str) -> Tuple[str, str]:
    """Return the image and camera_info topics a driver in namespace /<camera> publishes."""
    return f'/{camera}/image_raw', f'/{camera}/camera_info'


def hydranet_node(name: str, params_file: str, model_path: str, device: str,
                  use_sim_time: bool, image_topic: str, camera_info_topic: str,
                  points: bool = False, cameras: Tuple[str, ...] = ()) -> NodeSpec:
    """Return the HydraNet node: params file first, then only the overrides that were given.

    ``points`` turns depth/points on (else the params file decides). With ``cameras`` the
    node serves each camera, reading ``/<camera>/image_raw`` and ``/<camera>/camera_info``
    (where a driver started in namespace ``/<camera>`` publishes); image_topic and
    camera_info_topic are then unused.
    """
    overrides: Dict[str, object] = {'autostart': True, 'use_sim_time': use_sim_time}
    if cameras:
        overrides['cameras'] = list(cameras)
    if points:
        overrides['publish_points'] = True
    if model_path.strip():
        overrides['model_path'] = model_path.strip()
    if device.strip():
        overrides['device'] = device.strip()
    parameters = ([params_file] if params_file.strip() else []) + [overrides]
    remappings = [('image', image_topic), ('camera_info', camera_info_topic)]
    if cameras:
        remappings = [pair for camera in cameras for pair in zip(
            (f'{camera}/image', f'{camera}/camera_info'), camera_topics(camera))]
    return NodeSpec('hydranet_ros', 'hydranet_node', name, parameters, remappings)


def rviz_config_for_camera(config_text: str, namespace: str, camera: str) -> str:
    """Return an RViz config whose node topics are those of one camera (``front/...``)."""
    if not camera:
        return config_text
    base = '/' + namespace.strip('/') + '/' if namespace.strip('/') else '/'
    node_topic = re.compile(re.escape(base) + r'(depth|segmentation)/')
    text = node_topic.sub(lambda m: f'{base}{camera}/{m.group(1)}/', config_text)
    image_raw, _ = camera_topics(camera)
    return text.replace('/camera/image_raw', image_raw)


def profile_variables(prefixes: Iterable[str]) -> Tuple[str, ...]:
    """Return the variables the installed Fast DDS reads (share/fastdds: 3.x, fastrtps: 2.x)."""
    for prefix in prefixes:
        if os.path.isdir(os.path.join(prefix, 'share', 'fastdds')):
            return (FASTDDS_3_VARIABLE,)
        if os.path.isdir(os.path.join(prefix, 'share', 'fastrtps')):
            return (FASTDDS_2_VARIABLE,)
    return PROFILE_VARIABLES


def profile_environment(environ: Mapping[str, str], profile_path: str,
                        variables: Iterable[str] = PROFILE_VARIABLES) -> Dict[str, str]:
    """Return the profile variables to set: none if the user set one already."""
    if not profile_path.strip() or any(environ.get(name) for name in PROFILE_VARIABLES):
        return {}
    return {name: profile_path for name in variables}
