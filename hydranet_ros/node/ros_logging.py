"""Forwarding the engine's Python log records to the node's ROS logger (console, files, rosout)."""
import logging


class RosLogHandler(logging.Handler):
    """A logging handler that writes records through an rclpy logger."""

    def __init__(self, ros_logger) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record at the matching ROS severity.

        rclpy remembers the severity of each call site, so every severity has its own call.
        """
        try:
            message = self.format(record)
            if record.levelno >= logging.ERROR:
                self._ros_logger.error(message)
            elif record.levelno >= logging.WARNING:
                self._ros_logger.warning(message)
            elif record.levelno >= logging.INFO:
                self._ros_logger.info(message)
            else:
                self._ros_logger.debug(message)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def forward_package_logs(ros_logger, package: str = 'hydranet_ros') -> RosLogHandler:
    """Route the package's Python log records (INFO and above) to ``ros_logger``."""
    handler = RosLogHandler(ros_logger)
    handler.setFormatter(logging.Formatter('%(message)s'))
    python_logger = logging.getLogger(package)
    python_logger.addHandler(handler)
    python_logger.setLevel(logging.INFO)
    python_logger.propagate = False
    return handler
