"""HydraNet joint depth and segmentation for ROS 2."""
# On a machine without a ROS install the generated interfaces (hydranet_ros.msg) live in the
# virtual environment's site-packages while this source tree is installed in editable mode:
# extending the package path lets both halves import as one package.
import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
