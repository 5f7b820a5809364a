"""The one code style of the package: what `make lint` and `colcon test` (ament_flake8) check.

setup.cfg holds it (pycodestyle, pyflakes, the pep257 docstring convention, single quotes);
CMakeLists.txt hands it to ament_flake8 and leaves out ament_pep257, whose own docstring
convention differs.
"""
import configparser
import re
import subprocess
import sys

from conftest import REPO_ROOT

CHECKED = ['hydranet_ros', 'dev', 'test', 'launch', 'setup.py']


def test_flake8_and_docstrings_are_clean():
    result = subprocess.run([sys.executable, '-m', 'flake8', *CHECKED], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'flake8 found problems:\n{result.stdout}{result.stderr}'


def test_colcon_test_checks_the_same_convention():
    """Give ament_flake8 setup.cfg and leave ament_pep257 out of ament_lint_auto."""
    cmake = (REPO_ROOT / 'CMakeLists.txt').read_text()
    assert re.search(r'set\(ament_cmake_flake8_CONFIG_FILE\s+"\$\{CMAKE_CURRENT_SOURCE_DIR\}/'
                     r'setup\.cfg"\)', cmake)
    assert re.search(r'list\(APPEND AMENT_LINT_AUTO_EXCLUDE ament_cmake_pep257\)', cmake)
    assert cmake.index('AMENT_LINT_AUTO_EXCLUDE ament_cmake_pep257') < cmake.index(
        'ament_lint_auto_find_test_dependencies()')
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / 'setup.cfg')
    assert config['flake8']['docstring-convention'] == 'pep257'
