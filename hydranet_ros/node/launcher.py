"""Entry point of hydranet_node that stays quiet when interrupted while its libraries load.

Importing rclpy, PyTorch and OpenCV takes a second or two; Ctrl-C in that time would print a
KeyboardInterrupt traceback from deep inside an import. Here SIGINT ends the process at once
(as SIGTERM does) until ``hydranet_node.main`` installs its own handling.
"""
import signal
import sys
from typing import List, Optional


def main(args: Optional[List[str]] = None) -> int:
    """Load the node module with SIGINT at its default action, then run the node."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from .hydranet_node import main as run_node
    return run_node(args)


if __name__ == '__main__':
    sys.exit(main())
