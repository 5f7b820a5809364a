"""Shared fixtures: reference data paths, an isolated cache, the node tests' processes.

``node``, ``client`` and ``camera`` are drawn from the ``ros`` fixture of the module using them.
"""
import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / 'shared'
REFERENCE_DIR = SHARED_DIR / 'reference'
SAMPLES_DIR = SHARED_DIR / 'samples'


def require_shared(path: pathlib.Path) -> pathlib.Path:
    """Return ``path`` or skip the test when the shared reference data is not beside the repo."""
    if not path.exists():
        pytest.skip(f'reference data {path} is not available (expected ../shared beside the repo)')
    return path


@pytest.fixture(scope='session', autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep exported ONNX models of the tests out of the user's cache."""
    previous = os.environ.get('HYDRANET_CACHE_DIR')
    os.environ['HYDRANET_CACHE_DIR'] = str(tmp_path_factory.mktemp('hydranet_cache'))
    yield
    if previous is None:
        os.environ.pop('HYDRANET_CACHE_DIR', None)
    else:
        os.environ['HYDRANET_CACHE_DIR'] = previous


@pytest.fixture(scope='session')
def nyud_checkpoint() -> pathlib.Path:
    """Return the 40-class reference checkpoint (random weights in the published format)."""
    return require_shared(REFERENCE_DIR / 'ckpt_nyud_random.pth')


@pytest.fixture(scope='session')
def kitti_checkpoint() -> pathlib.Path:
    """Return the 6-class reference checkpoint (random weights in the published format)."""
    return require_shared(REFERENCE_DIR / 'ckpt_kitti_random.pth')


@pytest.fixture(scope='module')
def node(ros):
    """Return the node process of the module's ``ros`` fixture."""
    return ros[0]


@pytest.fixture(scope='module')
def client(ros):
    """Return the ROS node of the test process."""
    return ros[1]


@pytest.fixture(scope='module')
def camera(client):
    """Return a publisher of images and camera_info matched with the node's input topics."""
    from node_harness import CameraPublisher  # imports rclpy: only for tests that have it
    publisher = CameraPublisher(client)
    assert client.wait_for_subscriber(publisher.images), 'the node never subscribed to image'
    return publisher
