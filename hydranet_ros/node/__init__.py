"""The ROS 2 side of hydranet_ros: the node, its message conversions and helpers."""
