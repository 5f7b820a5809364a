"""Measure how many best-effort camera-sized images reach a subscriber in another process.

    python test/image_stream_probe.py                      # 640x480 rgb8, 30 Hz, with and without
    python test/image_stream_probe.py --width 1280 --height 720 --profile on

Runs a publisher and a subscriber process on a private domain, once with the shipped Fast DDS
profile (config/fastdds_large_data.xml) and once with the middleware defaults, and prints how
many frames arrived and their latency.
"""
import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from ros_test_support import ros_env, start_python, unique_domain_id

TOPIC = 'probe/image'
MATCH_TIMEOUT_S = 15.0
DRAIN_TIME_S = 1.5
ENCODING_CHANNELS = {'rgb8': 3, 'mono8': 1}


def run_publisher(args: argparse.Namespace) -> None:
    """Publish args.count images at args.rate_hz once a subscriber has matched."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('image_stream_probe_publisher')
    publisher = node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # let the subscriber match this writer as well
    channels = ENCODING_CHANNELS[args.encoding]
    image = Image(height=args.height, width=args.width, encoding=args.encoding,
                  step=args.width * channels)
    image.header.frame_id = 'camera_optical_frame'
    image.data = bytes(image.step * image.height)
    period_s = 1.0 / args.rate_hz
    start = time.monotonic()
    for index in range(args.count):
        time.sleep(max(0.0, start + index * period_s - time.monotonic()))
        image.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(image)
    print(json.dumps({'sent': args.count}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def run_subscriber(args: argparse.Namespace) -> None:
    """Count images until interrupted, then print the count and latencies as JSON."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.time import Time
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('image_stream_probe_subscriber')
    latencies_ms: List[float] = []

    def on_image(image: Image) -> None:
        stamp = Time.from_msg(image.header.stamp)
        latencies_ms.append((node.get_clock().now() - stamp).nanoseconds / 1e6)

    node.create_subscription(Image, TOPIC, on_image, qos_profile_sensor_data)
    print(json.dumps({'ready': True}), flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        latencies_ms.sort()
        result = {'received': len(latencies_ms)}
        if latencies_ms:
            result['mean_latency_ms'] = round(sum(latencies_ms) / len(latencies_ms), 2)
            result['p99_latency_ms'] = round(
                latencies_ms[min(len(latencies_ms) - 1, int(0.99 * len(latencies_ms)))], 2)
        print(json.dumps(result), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()


def measure(width: int, height: int, rate_hz: float, count: int, use_profile: bool,
            encoding: str = 'rgb8') -> Dict[str, float]:
    """Stream count images between two processes; return the subscriber's statistics."""
    with tempfile.TemporaryDirectory(prefix='image_stream_probe_') as log_dir:
        env = ros_env(Path(log_dir), unique_domain_id(), use_profile)
        common = ['--width', str(width), '--height', str(height), '--rate-hz', str(rate_hz),
                  '--count', str(count), '--encoding', encoding]
        script = str(Path(__file__).resolve())
        subscriber = start_python([script, '--role', 'subscriber', *common], env)
        publisher = None
        try:
            subscriber.stdout.readline()  # the subscriber is up
            publisher = start_python([script, '--role', 'publisher', *common], env)
            publisher_out, publisher_err = publisher.communicate(
                timeout=MATCH_TIMEOUT_S + 30 + count / rate_hz)
            if publisher.returncode != 0:
                raise RuntimeError(f'publisher failed: {publisher_err[-2000:]}')
            time.sleep(DRAIN_TIME_S)
            subscriber.send_signal(signal.SIGINT)
            subscriber_out, subscriber_err = subscriber.communicate(timeout=20)
        finally:
            for process in (publisher, subscriber):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
        lines = [line for line in subscriber_out.splitlines() if line.startswith('{')]
        if not lines:
            raise RuntimeError(f'subscriber printed no result: {subscriber_err[-2000:]}')
        result = json.loads(lines[-1])
        result['sent'] = json.loads(publisher_out.splitlines()[-1])['sent']
        return result


def parse_args(argv: List[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--role', choices=('measure', 'publisher', 'subscriber'),
                        default='measure', help='measure runs both roles in child processes')
    parser.add_argument('--width', type=int, default=640, help='image width in pixels')
    parser.add_argument('--height', type=int, default=480, help='image height in pixels')
    parser.add_argument('--encoding', choices=sorted(ENCODING_CHANNELS), default='rgb8',
                        help='image encoding')
    parser.add_argument('--rate-hz', type=float, default=30.0, help='publishing rate in Hz')
    parser.add_argument('--count', type=int, default=120, help='number of images to send')
    parser.add_argument('--profile', choices=('on', 'off', 'both'), default='both',
                        help='use the shipped Fast DDS profile, the defaults, or compare both')
    return parser.parse_args(argv)


def main(argv: List[str]) -> int:
    """Run one role, or measure with and without the profile."""
    args = parse_args(argv)
    if args.role == 'publisher':
        run_publisher(args)
    elif args.role == 'subscriber':
        run_subscriber(args)
    else:
        settings = {'on': [True], 'off': [False], 'both': [True, False]}[args.profile]
        for use_profile in settings:
            result = measure(args.width, args.height, args.rate_hz, args.count, use_profile,
                             args.encoding)
            label = 'shipped profile' if use_profile else 'defaults'
            print(f'{args.width}x{args.height} {args.encoding} at {args.rate_hz:g} Hz, '
                  f'best effort, {label}: {json.dumps(result)}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
