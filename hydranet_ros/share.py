"""Where the package's shipped files (config, launch files, message definitions) are installed.

They live in the package's share directory: ``share/hydranet_ros`` of a colcon install prefix
(found through the ament index), ``<venv>/share/hydranet_ros`` after ``make setup`` (where
``scripts/build_interfaces.sh`` links ``launch/`` and ``config/`` and installs ``msg/``), and,
in a source checkout that was never built, the checkout itself. ``share_path`` looks in that
order, so installed tools and nodes find them from any working directory.
"""
import os
import sys
from pathlib import Path
from typing import List

PACKAGE = 'hydranet_ros'
CHECKOUT_DIR = Path(__file__).resolve().parent.parent


class ShareFileError(FileNotFoundError):
    """A shipped file is in none of the package's share directories."""


def _indexed_share_directory() -> List[Path]:
    """Return the share directory the ament index knows (none without AMENT_PREFIX_PATH)."""
    try:
        from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    except ImportError:  # no ROS Python packages at all
        return []
    try:
        return [Path(get_package_share_directory(PACKAGE))]
    except (PackageNotFoundError, OSError):  # not indexed, or AMENT_PREFIX_PATH unset
        return []


def share_directories() -> List[Path]:
    """Return where shipped files may be: the indexed install, this interpreter's, the sources."""
    candidates = _indexed_share_directory() + [Path(sys.prefix) / 'share' / PACKAGE, CHECKOUT_DIR]
    unique: List[Path] = []
    for candidate in candidates:
        if candidate.is_dir() and all(not os.path.samefile(candidate, seen) for seen in unique):
            unique.append(candidate)
    return unique


def share_path(*parts: str) -> Path:
    """Return the shipped file at ``parts``, e.g. ``('config', 'hydranet.yaml')``.

    The first share directory that has it wins; ShareFileError names the places looked in.
    """
    directories = share_directories()
    for directory in directories:
        path = directory.joinpath(*parts)
        if path.exists():
            return path
    looked = ', '.join(str(directory) for directory in directories) or 'no share directory'
    raise ShareFileError(f'{"/".join(parts)} is not installed (looked in {looked}): build the '
                         f'package (colcon build on a ROS install, make setup without one)')
