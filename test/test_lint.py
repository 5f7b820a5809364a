"""The code style checks that ament_flake8 and ament_pep257 run, on the whole package."""
import subprocess
import sys

from conftest import REPO_ROOT

CHECKED = ['hydranet_ros', 'dev', 'test', 'launch', 'setup.py']


def test_flake8_and_docstrings_are_clean():
    result = subprocess.run([sys.executable, '-m', 'flake8', *CHECKED], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'flake8 found problems:\n{result.stdout}{result.stderr}'
