"""launch/perception.launch.py, its helpers, the RViz config and the Fast DDS profile.

The static checks run everywhere. Loading and running the launch description needs the
`launch` and `launch_ros` packages, which a ROS 2 install has and the PyPI wheels do not:
those tests are skipped, with the reason, where they are missing; wherever they are installed
(a ROS 2 install, `colcon test`) they run, including the real launches: a missing driver starts
nothing, Ctrl-C in a terminal ends every process with exit code 0, SIGTERM leaves none behind.
"""
import ast
import json
import os
from pathlib import Path
import shlex
import signal
import subprocess
import sys
import time
from typing import Dict, List, Tuple
import xml.etree.ElementTree as ElementTree

import pytest
import yaml

from hydranet_ros import launch_support
from ros_test_support import (FASTDDS_PROFILE, PROFILE_VARIABLES, REPO_ROOT, ros_env,
                              start_python, unique_domain_id)

LAUNCH_FILE = REPO_ROOT / 'launch' / 'perception.launch.py'
RVIZ_CONFIG = REPO_ROOT / 'config' / 'hydranet.rviz'
EXPECTED_ARGUMENTS = {
    'namespace', 'node_name', 'image_topic', 'camera_info_topic', 'params_file', 'model_path',
    'device', 'use_sim_time', 'camera', 'video_device', 'demo_source', 'cameras', 'points',
    'rviz', 'rviz_camera', 'rviz_config', 'fastdds_profile'}
SHM_SEGMENT_BYTES = 16 * 1024 * 1024
UDP_BUFFER_BYTES = 4 * 1024 * 1024
NODE_START_TIMEOUT_S = 90.0
LAUNCH_STOP_TIMEOUT_S = 60.0
# The bundled model runs at its training size (one network for both sample image sizes).
PIPELINE_ARGUMENTS = ['demo_source:=true', 'device:=cpu']
# The optional packages the launch file can start, with the executable it starts of each.
OPTIONAL_EXECUTABLES = {'usb_cam': 'usb_cam_node_exe', 'v4l2_camera': 'v4l2_camera_node',
                        'realsense2_camera': 'realsense2_camera_node', 'rviz2': 'rviz2'}
# The launch argument that asks for each optional package.
OPTIONAL_ARGUMENTS = {'usb_cam': {'camera': 'usb_cam'}, 'v4l2_camera': {'camera': 'v4l2_camera'},
                      'realsense2_camera': {'camera': 'realsense2_camera'},
                      'rviz2': {'rviz': 'true'}}


def declared_arguments() -> Dict[str, ast.Call]:
    """Return the DeclareLaunchArgument calls of the launch file by argument name."""
    calls = {}
    for node in ast.walk(ast.parse(LAUNCH_FILE.read_text(), str(LAUNCH_FILE))):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(
                node.func, 'attr', '')) == 'DeclareLaunchArgument':
            calls[ast.literal_eval(node.args[0])] = node
    return calls


def keyword(call: ast.Call, name: str):
    """Return the literal value of a keyword argument of call, or None."""
    for item in call.keywords:
        if item.arg == name:
            return ast.literal_eval(item.value)
    return None


# Static checks: no launch package needed.

def test_launch_file_compiles():
    """Compile the launch file."""
    compile(LAUNCH_FILE.read_text(), str(LAUNCH_FILE), 'exec')


def test_every_launch_argument_has_a_description():
    """Declare the expected arguments, each with a non-empty description."""
    calls = declared_arguments()
    assert set(calls) == EXPECTED_ARGUMENTS
    for name, call in calls.items():
        description = keyword(call, 'description')
        assert description and description.strip(), f'{name} has no description'


def test_topic_defaults():
    """Default to the usual camera topics and no model override."""
    calls = declared_arguments()
    assert keyword(calls['image_topic'], 'default_value') == '/camera/image_raw'
    assert keyword(calls['camera_info_topic'], 'default_value') == '/camera/camera_info'
    assert keyword(calls['model_path'], 'default_value') == ''
    assert keyword(calls['camera'], 'default_value') == 'none'


def test_launch_functions_are_typed():
    """Annotate the return type of every function in the launch file."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    assert functions
    for function in functions:
        assert function.returns is not None, f'{function.name} has no return annotation'


def test_fastdds_profile_names_large_data_transports():
    """Declare a 16 MB shared-memory and a 4 MB-buffer UDPv4 transport, builtins off."""
    root = ElementTree.parse(FASTDDS_PROFILE).getroot()
    namespace = root.tag[:root.tag.index('}') + 1] if root.tag.startswith('{') else ''
    assert root.tag == f'{namespace}profiles'

    descriptors = {
        item.findtext(f'{namespace}transport_id'): item
        for item in root.iter(f'{namespace}transport_descriptor')}
    types = {name: item.findtext(f'{namespace}type') for name, item in descriptors.items()}
    assert sorted(types.values()) == ['SHM', 'UDPv4']
    for name, item in descriptors.items():
        if types[name] == 'SHM':
            assert int(item.findtext(f'{namespace}segment_size')) == SHM_SEGMENT_BYTES
        else:
            assert int(item.findtext(f'{namespace}sendBufferSize')) == UDP_BUFFER_BYTES
            assert int(item.findtext(f'{namespace}receiveBufferSize')) == UDP_BUFFER_BYTES
    participants = list(root.iter(f'{namespace}participant'))
    assert len(participants) == 1
    assert participants[0].get('is_default_profile') == 'true'
    rtps = participants[0].find(f'{namespace}rtps')
    used = [item.text for item in rtps.iter(f'{namespace}transport_id')]
    assert sorted(used) == sorted(descriptors)
    assert rtps.findtext(f'{namespace}useBuiltinTransports') == 'false'


def test_rviz_config_shows_outputs_with_fixed_depth_range():
    """Show the input, the colour overlay, depth at 0-10 m, a depth cloud and depth/points."""
    config = yaml.safe_load(RVIZ_CONFIG.read_text())
    manager = config['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'camera_optical_frame'
    displays = {display['Name']: display for display in manager['Displays']}
    topics = {display.get('Topic', {}).get('Value') for display in displays.values()}
    assert {'/camera/image_raw', '/hydranet/segmentation/color',
            '/hydranet/depth/image'} <= topics
    depth = next(d for d in displays.values() if d.get('Topic', {}).get('Value') ==
                 '/hydranet/depth/image')
    assert depth['Class'] == 'rviz_default_plugins/Image'
    assert (depth['Normalize Range'], depth['Min Value'], depth['Max Value']) == (False, 0, 10)
    cloud = next(d for d in displays.values() if d['Class'] == 'rviz_default_plugins/DepthCloud')
    assert cloud['Depth Map Topic'] == '/hydranet/depth/image'
    points = next(d for d in displays.values() if d['Class'] ==
                  'rviz_default_plugins/PointCloud2')
    assert points['Topic']['Value'] == '/hydranet/depth/points'
    assert points['Topic']['Reliability Policy'] == 'Best Effort'  # as the node publishes it


# The pure helpers the launch file is built from.

@pytest.mark.parametrize('text, expected', [('true', True), ('False', False), (' TRUE ', True)])
def test_parse_bool(text, expected):
    """Accept true/false in any case."""
    assert launch_support.parse_bool(text) is expected


def test_parse_bool_rejects_other_words():
    """Reject anything but true/false, naming the value."""
    with pytest.raises(ValueError, match='yes'):
        launch_support.parse_bool('yes')


@pytest.mark.parametrize('camera, package, image_source', [
    ('usb_cam', 'usb_cam', 'image_raw'),
    ('v4l2_camera', 'v4l2_camera', 'image_raw'),
    ('realsense2_camera', 'realsense2_camera', '~/color/image_raw'),
])
def test_camera_driver_publishes_on_the_input_topics(camera, package, image_source):
    """Remap each driver's image and camera_info onto the topics the node reads."""
    spec = launch_support.camera_driver(camera, '/cam/image', '/cam/info', '/dev/video2', True)
    assert spec.package == package
    remaps = dict(spec.remappings)
    assert remaps[image_source] == '/cam/image'
    assert '/cam/info' in remaps.values()
    assert spec.parameters[0]['use_sim_time'] is True


def test_no_camera_driver_for_none_and_error_for_unknown():
    """Start no driver for none; name the choices for an unknown camera."""
    assert launch_support.camera_driver('none', '/a', '/b', '/dev/video0', False) is None
    with pytest.raises(ValueError, match='usb_cam'):
        launch_support.camera_driver('kinect', '/a', '/b', '/dev/video0', False)


def test_hydranet_node_overrides_only_given_values():
    """Load the params file first and override model_path/device only when given."""
    spec = launch_support.hydranet_node('hydranet_node', '/p.yaml', '', '', False, '/i', '/c')
    assert spec.executable == 'hydranet_node'
    assert spec.parameters == ['/p.yaml', {'autostart': True, 'use_sim_time': False}]
    assert dict(spec.remappings) == {'image': '/i', 'camera_info': '/c'}
    spec = launch_support.hydranet_node('hydranet_node', '/p.yaml', '/m.pt', 'cpu', True,
                                        '/i', '/c')
    assert spec.parameters[1] == {'autostart': True, 'use_sim_time': True,
                                  'model_path': '/m.pt', 'device': 'cpu'}
    spec = launch_support.hydranet_node('hydranet_node', '', '', '', False, '/i', '/c', True)
    assert spec.parameters == [{'autostart': True, 'use_sim_time': False,
                                'publish_points': True}]


def test_rviz_opens_the_display_config():
    """Start rviz2 with -d and the config path."""
    spec = launch_support.rviz('/c/hydranet.rviz', True)
    assert (spec.package, spec.executable, spec.arguments) == ('rviz2', 'rviz2',
                                                               ['-d', '/c/hydranet.rviz'])
    assert spec.parameters == [{'use_sim_time': True}]


def test_stop_with_launch_prefix_keeps_the_users_prefix_where_its_filter_matches():
    """Put stop_with_launch first, then --launch-prefix for executables matching the filter."""
    guard = ['/usr/bin/python3', '-m', 'hydranet_ros.stop_with_launch', '42']
    assert launch_support.stop_with_launch_prefix('/usr/bin/python3', 42, 'rviz2').split() == \
        guard
    assert launch_support.stop_with_launch_prefix(
        '/usr/bin/python3', 42, 'hydranet_node', 'gdb -ex run --args').split() == \
        guard + ['gdb', '-ex', 'run', '--args']
    assert launch_support.stop_with_launch_prefix(
        '/usr/bin/python3', 42, 'rviz2', 'valgrind', 'hydranet_.*').split() == guard
    spaced = launch_support.stop_with_launch_prefix('/opt/my python/bin/python3', 7, 'x')
    assert shlex.split(spaced)[0] == '/opt/my python/bin/python3'


def test_profile_variables_follow_the_installed_fastdds(tmp_path):
    """Pick the variable of Fast DDS 3.x or 2.x from the install; both when unknown."""
    kilted, humble, bare = tmp_path / 'kilted', tmp_path / 'humble', tmp_path / 'bare'
    (kilted / 'share' / 'fastdds').mkdir(parents=True)
    (humble / 'share' / 'fastrtps').mkdir(parents=True)
    bare.mkdir()
    assert launch_support.profile_variables([str(bare), str(kilted)]) == (
        'FASTDDS_DEFAULT_PROFILES_FILE',)
    assert launch_support.profile_variables([str(humble)]) == ('FASTRTPS_DEFAULT_PROFILES_FILE',)
    assert set(launch_support.profile_variables([str(bare)])) == set(PROFILE_VARIABLES)


def test_profile_environment_keeps_a_profile_the_user_set():
    """Set both profile variables, unless either is set already or no profile is given."""
    assert launch_support.profile_environment({}, '/x.xml') == {
        name: '/x.xml' for name in PROFILE_VARIABLES}
    assert launch_support.profile_environment(
        {'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'}, '/x.xml') == {}
    assert launch_support.profile_environment({}, '') == {}


# Loading the launch description: needs launch and launch_ros.

@pytest.fixture
def launch_api():
    """Return the launch modules, or skip when they are not installed."""
    # A bare `import launch` would find this repository's launch/ folder as a namespace package.
    try:
        import launch
        from launch.launch_description_sources import (
            get_launch_description_from_python_launch_file)
        import launch_ros.actions  # noqa: F401
    except ImportError as error:
        pytest.skip(f'launch is not installed: it comes with a ROS 2 install, not with the PyPI '
                    f'wheels ({error})')
    return launch, get_launch_description_from_python_launch_file


def ament_prefixes() -> List[str]:
    """Return this interpreter's prefix (where `make setup` indexes the package) and the others."""
    found = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    return [sys.prefix] + [p for p in found if p != sys.prefix]


@pytest.fixture
def optional_packages(tmp_path, monkeypatch) -> Path:
    """Index a prefix holding the drivers and rviz2 (executables that are never started)."""
    prefix = tmp_path / 'optional_prefix'
    index = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    for package, executable in OPTIONAL_EXECUTABLES.items():
        (index / package).write_text('')
        program = prefix / 'lib' / package / executable
        program.parent.mkdir(parents=True)
        program.write_text('#!/bin/sh\nexit 0\n')
        program.chmod(0o755)
    monkeypatch.setenv('AMENT_PREFIX_PATH', os.pathsep.join([str(prefix)] + ament_prefixes()))
    return prefix


def missing_optional_package() -> Tuple[str, Dict[str, str]]:
    """Return an optional package this machine lacks and the launch argument asking for it."""
    from ament_index_python.packages import get_package_prefix, PackageNotFoundError

    for package, arguments in OPTIONAL_ARGUMENTS.items():
        try:
            get_package_prefix(package)
        except PackageNotFoundError:
            return package, arguments
    pytest.skip('every camera driver and rviz2 is installed here: no missing package to ask for')


def resolve(launch_api, arguments: Dict[str, str]) -> List:
    """Return the actions the launch file creates for arguments (nothing is started)."""
    launch, load = launch_api
    description = load(str(LAUNCH_FILE))
    context = launch.LaunchContext()
    context.launch_configurations.update(arguments)
    actions = []
    for entity in description.entities:
        actions.extend(entity.visit(context) or [])
    return context, actions


def started_nodes(actions: List) -> List[str]:
    """Return package/executable of the Node actions."""
    return [f'{a.node_package}/{a.node_executable}' for a in actions if hasattr(a, 'node_package')]


def test_launch_arguments_match_the_declarations(launch_api):
    """Expose exactly the declared arguments through the launch API."""
    _, load = launch_api
    names = {argument.name for argument in load(str(LAUNCH_FILE)).get_launch_arguments()}
    assert names == EXPECTED_ARGUMENTS


@pytest.mark.parametrize('arguments, expected', [
    ({}, ['hydranet_ros/hydranet_node']),
    ({'camera': 'usb_cam'}, ['hydranet_ros/hydranet_node', 'usb_cam/usb_cam_node_exe']),
    ({'demo_source': 'true', 'rviz': 'true'},
     ['hydranet_ros/hydranet_node', 'hydranet_ros/hydranet_demo_source', 'rviz2/rviz2']),
    ({'camera': 'realsense2_camera'},
     ['hydranet_ros/hydranet_node', 'realsense2_camera/realsense2_camera_node']),
])
def test_launch_starts_the_chosen_nodes(launch_api, optional_packages, monkeypatch,
                                        arguments, expected):
    """Start the node plus exactly the chosen driver, demo source and RViz."""
    for name in PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    _, actions = resolve(launch_api, arguments)
    assert started_nodes(actions) == expected


def test_every_node_ends_with_the_launch(launch_api, optional_packages):
    """Start each node through stop_with_launch with this launch's pid, labelled by executable."""
    context, actions = resolve(launch_api, {'camera': 'usb_cam', 'demo_source': 'true',
                                            'rviz': 'true'})
    nodes = [a for a in actions if hasattr(a, 'node_package')]
    assert len(nodes) == 4
    for node in nodes:
        description = node.process_description
        prefix = ''.join(part.perform(context) for part in description.prefix)
        assert prefix.split() == [sys.executable, '-m', launch_support.STOP_WITH_LAUNCH_MODULE,
                                  str(os.getpid())], prefix
        assert ''.join(part.perform(context) for part in description.name) == \
            node.node_executable


def test_missing_package_fails_before_any_action(launch_api, monkeypatch):
    """Name the missing driver or rviz2 package and return no action at all."""
    from ament_index_python.packages import PackageNotFoundError

    monkeypatch.setenv('AMENT_PREFIX_PATH', os.pathsep.join(ament_prefixes()))
    package, arguments = missing_optional_package()
    launch, load = launch_api
    description = load(str(LAUNCH_FILE))
    context = launch.LaunchContext()
    context.launch_configurations.update(arguments)
    actions = []
    with pytest.raises(PackageNotFoundError, match=f"package '{package}' not found"):
        for entity in description.entities:
            actions.extend(entity.visit(context) or [])
    assert not started_nodes(actions)


def test_launch_applies_the_profile_unless_the_user_set_one(launch_api, monkeypatch):
    """Set both profile variables to the shipped file; keep a user's own profile."""
    from launch.actions import SetEnvironmentVariable
    from launch.utilities import perform_substitutions

    for name in PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('AMENT_PREFIX_PATH', os.pathsep.join(ament_prefixes()))
    context, actions = resolve(launch_api, {})
    setters = {perform_substitutions(context, a.name): perform_substitutions(context, a.value)
               for a in actions if isinstance(a, SetEnvironmentVariable)}
    assert set(setters) == set(launch_support.profile_variables(ament_prefixes()))
    assert all(Path(path).name == FASTDDS_PROFILE.name and Path(path).is_file()
               for path in setters.values())
    monkeypatch.setenv('FASTDDS_DEFAULT_PROFILES_FILE', '/elsewhere.xml')
    _, actions = resolve(launch_api, {})
    assert not [a for a in actions if isinstance(a, SetEnvironmentVariable)]


LAUNCH_RUNNER = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService()
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]),
    launch_arguments=[argument.split(':=', 1) for argument in sys.argv[2:]]))
sys.exit(service.run())
"""

OUTPUT_WATCHER = """
import json, sys, time
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('launch_test_watcher')
timeout_s, topic, expected = float(sys.argv[1]), sys.argv[2], set(sys.argv[3:])
depth = []
node.create_subscription(Image, topic, depth.append,
                         QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE))
deadline, seen = time.monotonic() + timeout_s, set()
while time.monotonic() < deadline and not (depth and expected <= seen):
    rclpy.spin_once(node, timeout_sec=0.2)
    seen = {name for name, _ in node.get_node_names_and_namespaces()}
first = depth[0] if depth else None
print(json.dumps({'nodes': sorted(seen), 'depth_frames': len(depth),
                  'encoding': first.encoding if first else None,
                  'frame_id': first.header.frame_id if first else None}), flush=True)
"""


def start_launch(arguments: List[str], env: Dict[str, str], log_path: Path) -> subprocess.Popen:
    """Run the launch file in a process group of its own (as a terminal does), output to a file."""
    command = [sys.executable, '-c', LAUNCH_RUNNER, str(LAUNCH_FILE), *arguments]
    with open(log_path, 'w') as log:
        return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)


def group_alive(group: int) -> bool:
    """Return whether any process of the process group is left (orphans keep their group)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_group_gone(group: int, timeout_s: float) -> bool:
    """Wait until the process group is empty; return False if it is not within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while group_alive(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def kill_group(launch: subprocess.Popen) -> None:
    """Kill what a failed test left of a launch."""
    if launch.poll() is None or group_alive(launch.pid):
        try:
            os.killpg(launch.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        launch.wait()


def run_until_depth(env: Dict[str, str]) -> dict:
    """Wait for both nodes and a depth image of the launched pipeline; return what was seen."""
    watcher = start_python(['-c', OUTPUT_WATCHER, str(NODE_START_TIMEOUT_S),
                            '/hydranet/depth/image', 'hydranet_node', 'hydranet_demo_source'],
                           env)
    output, errors = watcher.communicate(timeout=NODE_START_TIMEOUT_S + 30)
    assert watcher.returncode == 0, errors[-2000:]
    return json.loads(output.strip().splitlines()[-1])


def pipeline_env(tmp_path: Path) -> Dict[str, str]:
    """Return the environment of a launched pipeline: private domain, indexed package."""
    env = ros_env(tmp_path, unique_domain_id())
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(ament_prefixes())
    return env


def test_missing_package_starts_no_process(launch_api, tmp_path, monkeypatch):
    """Fail with the missing package's name, start nothing and leave no process behind."""
    env = pipeline_env(tmp_path)
    monkeypatch.setenv('AMENT_PREFIX_PATH', env['AMENT_PREFIX_PATH'])
    package, arguments = missing_optional_package()
    log_path = tmp_path / 'launch.log'
    launch = start_launch([f'{name}:={value}' for name, value in arguments.items()], env,
                          log_path)
    try:
        code = launch.wait(timeout=LAUNCH_STOP_TIMEOUT_S)
        gone = wait_group_gone(launch.pid, LAUNCH_STOP_TIMEOUT_S)
    finally:
        kill_group(launch)
    output = log_path.read_text()
    assert code == 1, output[-3000:]
    assert f"package '{package}' not found" in output, output[-3000:]
    assert 'process started' not in output, output[-3000:]
    assert gone, 'a process of the launch is still running'


def test_ctrl_c_ends_every_process_with_exit_code_0(launch_api, tmp_path):
    """Serve depth from the demo source; Ctrl-C then ends every process with 0, no traceback.

    A terminal sends SIGINT to the whole process group and launch passes it on once more, so
    each node gets it twice, the second time while it shuts down.
    """
    env = pipeline_env(tmp_path)
    log_path = tmp_path / 'launch.log'
    launch = start_launch(PIPELINE_ARGUMENTS, env, log_path)
    try:
        result = run_until_depth(env)
        os.killpg(launch.pid, signal.SIGINT)
        code = launch.wait(timeout=LAUNCH_STOP_TIMEOUT_S)
        gone = wait_group_gone(launch.pid, LAUNCH_STOP_TIMEOUT_S)
    finally:
        kill_group(launch)
    output = log_path.read_text()
    assert {'hydranet_node', 'hydranet_demo_source'} <= set(result['nodes']), result
    assert result['depth_frames'] >= 1, (result, output[-3000:])
    assert (result['encoding'], result['frame_id']) == ('32FC1', 'camera_optical_frame')
    assert code == 0, output[-3000:]
    assert output.count('process started') == 2, output[-3000:]
    assert output.count('process has finished cleanly') == 2, output[-3000:]
    assert 'process has died' not in output and 'Traceback' not in output, output[-3000:]
    assert gone, 'a process of the launch is still running'


def test_sigterm_to_the_launch_leaves_no_process(launch_api, tmp_path):
    """End the nodes when the launch process alone gets SIGTERM, which launch does not pass on."""
    env = pipeline_env(tmp_path)
    log_path = tmp_path / 'launch.log'
    launch = start_launch(PIPELINE_ARGUMENTS, env, log_path)
    try:
        result = run_until_depth(env)
        launch.send_signal(signal.SIGTERM)
        launch.wait(timeout=LAUNCH_STOP_TIMEOUT_S)
        gone = wait_group_gone(launch.pid, LAUNCH_STOP_TIMEOUT_S)
    finally:
        kill_group(launch)
    output = log_path.read_text()
    assert {'hydranet_node', 'hydranet_demo_source'} <= set(result['nodes']), result
    assert gone, f'a node outlived the launch:\n{output[-3000:]}'
    assert 'Traceback' not in output, output[-3000:]


def test_many_cameras_read_their_drivers_namespaces():
    """cameras:=front,rear: one node parameter, each camera's topics remapped to /<camera>."""
    assert launch_support.parse_cameras(' front, arm/left ,') == ('front', 'arm/left')
    with pytest.raises(ValueError, match='is not a camera name'):
        launch_support.parse_cameras('front,2nd')
    with pytest.raises(ValueError, match='twice'):
        launch_support.parse_cameras('front,front')
    spec = launch_support.hydranet_node('hydranet_node', '', '', '', False, '/i', '/c',
                                        cameras=('front', 'rear'))
    assert spec.parameters[0]['cameras'] == ['front', 'rear']
    assert dict(spec.remappings) == {
        'front/image': '/front/image_raw', 'front/camera_info': '/front/camera_info',
        'rear/image': '/rear/image_raw', 'rear/camera_info': '/rear/camera_info'}
    source = launch_support.demo_source(*launch_support.camera_topics('rear'), False, 'rear')
    assert source.name == 'rear_demo_source'
    assert source.parameters[0]['frame_id'] == 'rear_optical_frame'
    assert dict(source.remappings)['image'] == '/rear/image_raw'


def test_rviz_shows_the_chosen_camera():
    """rviz_camera:=rear points every node display of the shipped config at rear/."""
    shipped = (REPO_ROOT / 'config' / 'hydranet.rviz').read_text()
    chosen = launch_support.rviz_config_for_camera(shipped, 'hydranet', 'rear')
    assert '/hydranet/rear/depth/image' in chosen and '/hydranet/rear/segmentation/color' in chosen
    assert '/hydranet/depth/' not in chosen and '/hydranet/segmentation/' not in chosen
    assert '/rear/image_raw' in chosen and '/camera/image_raw' not in chosen
    assert launch_support.rviz_config_for_camera(shipped, 'hydranet', '') == shipped
