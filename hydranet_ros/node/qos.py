"""Quality-of-service profiles of the node's inputs and outputs, chosen by name."""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

INPUT_QOS_CHOICES = ('sensor_data', 'reliable', 'best_effort')
OUTPUT_QOS_CHOICES = ('reliable', 'best_effort')
LATCHED_DEPTH = 1


def input_qos(name: str, depth: int) -> QoSProfile:
    """Return the subscription QoS for camera topics.

    ``sensor_data`` (best effort, volatile, as rclpy's profile but with ``depth``) accepts both
    best-effort and reliable publishers; ``best_effort`` is its other name; ``reliable`` matches
    reliable publishers only and lets the publisher retransmit lost fragments.
    """
    if name not in INPUT_QOS_CHOICES:
        raise ValueError(f'unknown input QoS {name!r}; use one of {", ".join(INPUT_QOS_CHOICES)}')
    if name == 'reliable':
        return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=qos_profile_sensor_data.reliability,
                      durability=qos_profile_sensor_data.durability)


def output_qos(name: str, depth: int) -> QoSProfile:
    """Return the publisher QoS for images: reliable (RViz, depth_image_proc) or best effort."""
    if name not in OUTPUT_QOS_CHOICES:
        raise ValueError(
            f'unknown output QoS {name!r}; use one of {", ".join(OUTPUT_QOS_CHOICES)}')
    reliability = (ReliabilityPolicy.RELIABLE if name == 'reliable'
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def latched_qos() -> QoSProfile:
    """Return the QoS of class metadata: reliable and transient local, so late joiners get it."""
    return QoSProfile(depth=LATCHED_DEPTH, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
