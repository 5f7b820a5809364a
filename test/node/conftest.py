"""Fixtures of the node tests drawn from each module's ``ros`` fixture (node, client)."""
import pytest


@pytest.fixture(scope='module')
def node(ros):
    """Return the node process of the module's ``ros`` fixture."""
    return ros[0]


@pytest.fixture(scope='module')
def client(ros):
    """Return the ROS node of the test process."""
    return ros[1]


@pytest.fixture(scope='module')
def camera(client):
    """Return a publisher of images and camera_info matched with the node's input topics."""
    from node_harness import CameraPublisher  # imports rclpy: only for tests that have it
    publisher = CameraPublisher(client)
    assert client.wait_for_subscriber(publisher.images), 'the node never subscribed to image'
    return publisher
