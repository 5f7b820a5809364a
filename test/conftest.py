"""Shared fixtures: paths to the reference data and an isolated cache per test session."""
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
