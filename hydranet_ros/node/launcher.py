"""Entry points of hydranet_node and hydranet_demo_source that stay quiet while they load.

Importing rclpy, PyTorch and OpenCV takes a second or two; Ctrl-C in that time would print a
KeyboardInterrupt traceback from deep inside an import. Here SIGINT or SIGTERM ends the process
at once with exit status 0 until the module is loaded; its main then installs its own handling.
"""
import sys
from typing import List, Optional

from ..signals import exit_at_once_on_stop


def main(args: Optional[List[str]] = None) -> int:
    """Load the node module, ending at once on a stop signal meanwhile, then run the node."""
    with exit_at_once_on_stop():
        from .hydranet_node import main as run_node
    return run_node(args)


def demo_source(args: Optional[List[str]] = None) -> int:
    """Load the demo camera, ending at once on a stop signal meanwhile, then publish."""
    with exit_at_once_on_stop():
        from .demo_source import main as run_source
    return run_source(args)


if __name__ == '__main__':
    sys.exit(main())
