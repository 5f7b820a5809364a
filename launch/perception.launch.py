"""Start HydraNet depth and segmentation on a camera stream, optionally with a driver and RViz.

    ros2 launch hydranet_ros perception.launch.py camera:=usb_cam rviz:=true
    ros2 launch hydranet_ros perception.launch.py demo_source:=true model_path:=/path/model.pt
    ros2 launch hydranet_ros perception.launch.py cameras:=front,rear demo_source:=true \
        rviz:=true rviz_camera:=rear

The node reads image_topic and camera_info_topic and publishes in its namespace (default
hydranet): depth/image (32FC1 m), depth/camera_info, segmentation/labels, segmentation/color,
segmentation/confidence, segmentation/label_info (latched) and perception (DepthSegmentation).

The shipped Fast DDS transport profile (config/fastdds_large_data.xml) is applied to every
process started here through FASTDDS_DEFAULT_PROFILES_FILE (Fast DDS 3.x: Kilted and later) or
FASTRTPS_DEFAULT_PROFILES_FILE (Fast DDS 2.x: Humble, Jazzy; both when the version is not
found), unless either variable is already set in the environment (then the user's profile is
kept) or fastdds_profile:='' is given. Processes outside this launch (other camera pipelines)
need the same profile to receive best-effort images of 640x480 and larger without loss.

Every package the chosen nodes need (camera driver, rviz2) is looked up before anything starts:
a missing one fails the launch with nothing started. Each node runs through
hydranet_ros.stop_with_launch, which ends it (SIGTERM) when the launch process ends, also when
the launch was killed or got SIGTERM, which launch does not pass on to the nodes it started.
"""
import os
import sys
import tempfile
from typing import List, Tuple

from launch import LaunchContext, LaunchDescription
from launch.action import Action
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage

from hydranet_ros import launch_support
from hydranet_ros.share import share_path


def to_node(spec: launch_support.NodeSpec, namespace: str, prefix: str) -> Node:
    """Turn a node description into a launch_ros Node action started through prefix."""
    return Node(package=spec.package, executable=spec.executable, name=spec.name,
                namespace=namespace, parameters=spec.parameters, remappings=spec.remappings,
                arguments=spec.arguments, prefix=prefix, exec_name=spec.executable,
                output='screen', emulate_tty=True)


def launch_setup(context: LaunchContext) -> List[Action]:
    """Resolve the arguments and return the actions for the chosen configuration."""
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    namespace = value('namespace')
    image_topic = value('image_topic')
    camera_info_topic = value('camera_info_topic')
    use_sim_time = launch_support.parse_bool(value('use_sim_time'))
    actions: List[Action] = []

    environ = getattr(context, 'environment', os.environ)  # launch before Iron: os.environ
    prefixes = [p for p in environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    profile = launch_support.profile_environment(
        environ, value('fastdds_profile'), launch_support.profile_variables(prefixes))
    for variable, path in profile.items():
        actions.append(SetEnvironmentVariable(variable, path))
    if profile:
        actions.append(LogInfo(msg=f'Fast DDS profile: {value("fastdds_profile")}'))

    cameras = launch_support.parse_cameras(value('cameras'))
    nodes: List[Tuple[launch_support.NodeSpec, str]] = [(launch_support.hydranet_node(
        value('node_name'), value('params_file'), value('model_path'), value('device'),
        use_sim_time, image_topic, camera_info_topic,
        launch_support.parse_bool(value('points')), cameras), namespace)]
    # The camera side keeps its own names: it publishes on the absolute input topics.
    driver = launch_support.camera_driver(value('camera'), image_topic, camera_info_topic,
                                          value('video_device'), use_sim_time)
    if driver is not None:
        nodes.append((driver, ''))
    if driver is not None and cameras:
        actions.append(LogInfo(msg=f'camera:={driver.package} publishes on {image_topic}; with '
                                   f'cameras:= the node reads /<camera>/image_raw: start a '
                                   f'driver per camera in namespace /<camera>'))
    if launch_support.parse_bool(value('demo_source')):
        if driver is not None:
            actions.append(LogInfo(msg=f'demo_source and camera:={driver.package} both publish '
                                       f'on {image_topic}'))
        for camera in cameras or ('',):
            topics = launch_support.camera_topics(camera) if camera else (image_topic,
                                                                          camera_info_topic)
            nodes.append((launch_support.demo_source(*topics, use_sim_time, camera), ''))
    if launch_support.parse_bool(value('rviz')):
        config = value('rviz_config')
        if value('rviz_camera'):
            with open(config) as shipped:
                text = launch_support.rviz_config_for_camera(shipped.read(), namespace,
                                                             value('rviz_camera'))
            handle, config = tempfile.mkstemp(prefix='hydranet_', suffix='.rviz')
            with os.fdopen(handle, 'w') as chosen:
                chosen.write(text)
        nodes.append((launch_support.rviz(config, use_sim_time), ''))

    # Look every executable up now: a missing package raises here (launch reports "package
    # 'usb_cam' not found" and exits 1) before any action exists, so nothing is left running.
    for spec, _ in nodes:
        ExecutableInPackage(executable=spec.executable, package=spec.package).perform(context)
    user_prefix = LaunchConfiguration('launch-prefix', default='').perform(context)
    user_filter = LaunchConfiguration('launch-prefix-filter', default='').perform(context)
    for spec, node_namespace in nodes:
        prefix = launch_support.stop_with_launch_prefix(
            sys.executable, os.getpid(), spec.executable, user_prefix, user_filter)
        actions.append(to_node(spec, node_namespace, prefix))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments; the actions are created once they are known."""
    arguments = [
        DeclareLaunchArgument('namespace', default_value='hydranet',
                              description='Namespace of the HydraNet node: it publishes '
                                          '<namespace>/depth/image, <namespace>/segmentation/'
                                          '... (the RViz config expects hydranet)'),
        DeclareLaunchArgument('node_name', default_value='hydranet_node',
                              description='Name of the HydraNet node'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='Input sensor_msgs/Image topic'),
        DeclareLaunchArgument('camera_info_topic', default_value='/camera/camera_info',
                              description='Input sensor_msgs/CameraInfo topic'),
        DeclareLaunchArgument('params_file',
                              default_value=str(share_path('config', 'hydranet.yaml')),
                              description='Node parameters (YAML with ros__parameters)'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='Checkpoint to load; empty keeps the params file value'),
        DeclareLaunchArgument('device', default_value='',
                              description='Inference device (auto, cpu, cuda, cuda:N); empty '
                                          'keeps the params file value'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              choices=list(launch_support.BOOL_CHOICES),
                              description='Use /clock (bag playback or simulation)'),
        DeclareLaunchArgument('camera', default_value='none',
                              choices=list(launch_support.CAMERA_CHOICES),
                              description='Camera driver to start (its package must be '
                                          'installed); none uses an existing image_topic'),
        DeclareLaunchArgument('video_device', default_value='/dev/video0',
                              description='V4L2 device for camera:=usb_cam or v4l2_camera'),
        DeclareLaunchArgument('demo_source', default_value='false',
                              choices=list(launch_support.BOOL_CHOICES),
                              description='Publish the shipped sample scenes on image_topic'),
        DeclareLaunchArgument('cameras', default_value='',
                              description='Many cameras through one node, e.g. front,rear: the '
                                          'node reads /<camera>/image_raw and /<camera>/'
                                          'camera_info (a driver in namespace /<camera>) and '
                                          'publishes <namespace>/<camera>/depth/image, ...; '
                                          'with demo_source:=true one demo camera each'),
        DeclareLaunchArgument('rviz_camera', default_value='',
                              description='With cameras:=, the camera RViz shows (its topics '
                                          'replace the single-camera ones of rviz_config)'),
        DeclareLaunchArgument('points', default_value='false',
                              choices=list(launch_support.BOOL_CHOICES),
                              description='Publish the labelled point cloud depth/points '
                                          '(needs camera_info)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              choices=list(launch_support.BOOL_CHOICES),
                              description='Start RViz with the shipped display config'),
        DeclareLaunchArgument('rviz_config',
                              default_value=str(share_path('config', 'hydranet.rviz')),
                              description='RViz display config'),
        DeclareLaunchArgument('fastdds_profile',
                              default_value=str(share_path('config', 'fastdds_large_data.xml')),
                              description='Fast DDS XML profile for large images; empty, or an '
                                          'already set FASTDDS_/FASTRTPS_DEFAULT_PROFILES_FILE, '
                                          'leaves the transport as it is'),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=launch_setup)])
