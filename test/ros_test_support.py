"""Environment for tests that start ROS 2 processes: private domain, logs, transport profile."""
import os
import random
from pathlib import Path
import subprocess
import sys
from typing import Dict, List, Optional

from hydranet_ros.launch_support import PROFILE_VARIABLES, profile_variables

REPO_ROOT = Path(__file__).resolve().parent.parent
FASTDDS_PROFILE = REPO_ROOT / 'config' / 'fastdds_large_data.xml'
# Domain ids 1..101 map to distinct, valid UDP ports on Linux with the default port settings.
MAX_DOMAIN_ID = 101


def unique_domain_id() -> int:
    """Return a domain id unlikely to be shared with a concurrent test run on this machine."""
    return random.SystemRandom().randint(1, MAX_DOMAIN_ID)


def ros_env(log_dir: Path, domain_id: int, use_profile: bool = True) -> Dict[str, str]:
    """Return a child-process environment on a private domain, logging under log_dir."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_LOG_DIR'] = str(log_dir)
    env['ROS_HOME'] = str(log_dir)
    env['PYTHONUNBUFFERED'] = '1'
    prefixes = [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    for name in PROFILE_VARIABLES:
        env.pop(name, None)
    if use_profile:
        for name in profile_variables(prefixes + [sys.prefix]):
            env[name] = str(FASTDDS_PROFILE)
    env.pop('FASTDDS_BUILTIN_TRANSPORTS', None)
    return env


def start_python(args: List[str], env: Dict[str, str],
                 cwd: Optional[Path] = None) -> subprocess.Popen:
    """Start `python <args>` with this interpreter; stdout and stderr are captured as text."""
    return subprocess.Popen([sys.executable, *args], env=env, cwd=cwd or REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
