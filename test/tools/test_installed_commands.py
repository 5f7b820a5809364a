"""The installed console scripts work from a folder outside the source checkout.

They are run as a user runs them (the entry-point scripts beside this interpreter), with the
working directory in a temporary folder and no PYTHONPATH, so that nothing can be found
through the checkout's relative paths: config comes from the package's share directory.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hydranet_ros
from hydranet_ros.share import share_path

SAMPLE = Path(hydranet_ros.__file__).resolve().parent / 'assets' / 'samples' / 'kitti_000099.png'
HELP_TIMEOUT_S = 120
RUN_TIMEOUT_S = 600
USER_COMMANDS = ['hydranet-infer', 'hydranet-bag', 'hydranet-bench', 'hydranet-demo',
                 'hydranet-train', 'hydranet-eval', 'hydranet-fleet']


def command_path(name: str) -> str:
    """Return the installed script ``name``, or skip when this environment did not install it."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        pytest.skip(f'{name} is not installed here (pip install -e . or make setup installs it)')
    return found


def run(name: str, args: list, cwd: Path, timeout_s: float) -> subprocess.CompletedProcess:
    """Run an installed command in ``cwd`` without PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    return subprocess.run([command_path(name), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout_s)


@pytest.mark.parametrize('name', USER_COMMANDS)
def test_help_works_from_any_folder(name, tmp_path):
    result = run(name, ['--help'], tmp_path, HELP_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert 'usage:' in result.stdout


def test_infer_runs_on_a_sample_from_any_folder(tmp_path):
    picture = tmp_path / 'street.png'
    shutil.copyfile(SAMPLE, picture)
    result = run('hydranet-infer', ['street.png', '--out', 'predictions', '--device', 'cpu',
                                    '--summary', 'summary.json'], tmp_path, RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in (tmp_path / 'predictions').iterdir())
    assert any(name.endswith('.npy') for name in written), written
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert 'street' in json.dumps(summary)


def test_demo_runs_the_node_with_the_shipped_config_from_any_folder(tmp_path):
    share_path('config', 'hydranet.yaml')  # the demo's parameters come from here
    result = run('hydranet-demo', ['--generated', '0', '--device', 'cpu', '--out', 'demo'],
                 tmp_path, RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / 'demo' / 'summary.json').read_text())
    assert summary['frames'], summary
    assert (tmp_path / 'demo' / 'frame_00_panel.png').is_file()
