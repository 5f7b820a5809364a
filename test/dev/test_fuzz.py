"""Malformed input: the checks that run on arrival, and a short fuzzing run of real nodes.

The long form (>= 10,000 malformed messages) is
``python -m dev.reliability.fuzz --malformed 10000``; here a few hundred messages go
to a raw-image node and a compressed-image node, each in its own process over real DDS.
"""
import math

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

import cv2  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from hydranet_ros.node import input_checks  # noqa: E402
from hydranet_ros.node.input_checks import (CompressedHeaderError,  # noqa: E402
                                            UnknownPictureFormat, picture_header)
from hydranet_ros.node.messages import array_to_image  # noqa: E402
from hydranet_ros.node.diagnostics import (REJECTION_LOG_BURST,  # noqa: E402
                                           REJECTION_LOG_PERIOD_S, RejectionLog)
from dev.reliability import fuzz_cases  # noqa: E402
from dev.reliability.fuzz import run_fuzz  # noqa: E402
from dev.reliability.report import fuzz_section  # noqa: E402

SHORT_MALFORMED = 300
MAX_PIXELS = 640 * 480


@pytest.fixture(scope='module')
def pictures() -> fuzz_cases.FuzzImages:
    """Return the fuzzing pictures built from a random image."""
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return fuzz_cases.FuzzImages(rgb, MAX_PIXELS)


def test_png_and_jpeg_headers_give_the_size_without_decoding(pictures):
    """Width, height and bit depth come from the first bytes; cut-off headers are refused."""
    assert picture_header(pictures.png) == ('png', 64, 48, 8)
    assert picture_header(pictures.jpeg) == ('jpeg', 64, 48, 8)
    assert picture_header(pictures.png16).bit_depth == 16
    progressive = cv2.imencode('.jpg', pictures.rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert picture_header(progressive.tobytes())[1:3] == (64, 48)
    for cut in (3, 20):
        with pytest.raises(CompressedHeaderError):
            picture_header(pictures.png[:cut])
    with pytest.raises(CompressedHeaderError):
        picture_header(pictures.jpeg[:pictures.jpeg_frame_offset + 3])
    with pytest.raises(UnknownPictureFormat):
        picture_header(b'GIF89a' + bytes(100))


def test_every_fuzz_case_is_refused_on_arrival_with_its_kind(pictures):
    """Each malformed case the fuzzer sends is rejected by the arrival checks as it expects."""
    rng = np.random.default_rng(2)
    decks = {'raw': fuzz_cases.RAW_MALFORMED, 'compressed': fuzz_cases.COMPRESSED_MALFORMED}
    header = array_to_image(pictures.rgb, 'rgb8').header
    for kind, makers in decks.items():
        for name, (maker, _) in makers.items():
            for _ in range(20):
                msg, expected = maker(pictures, rng, header)
                if expected == input_checks.CAMERA_INFO:
                    check = input_checks.check_camera_info
                elif isinstance(msg, CompressedImage):
                    check = lambda m: input_checks.check_compressed(m, MAX_PIXELS)  # noqa: E731
                else:
                    check = lambda m: input_checks.check_image(m, MAX_PIXELS)  # noqa: E731
                if expected == fuzz_cases.DECODER:
                    check(msg)  # a valid header: the decoder decides
                    continue
                with pytest.raises(input_checks.RejectedInput) as caught:
                    check(msg)
                assert caught.value.kind == expected, (name, str(caught.value))
                assert str(caught.value), name


def test_good_frames_pass_the_arrival_checks(pictures):
    """Padded odd strides, big-endian flags on 8-bit data and every encoding are accepted."""
    rng = np.random.default_rng(3)
    header = array_to_image(pictures.rgb, 'rgb8').header
    for _ in range(30):
        msg, expected = fuzz_cases.good_raw(pictures, rng, header)
        assert expected == fuzz_cases.GOOD
        input_checks.check_image(msg, MAX_PIXELS)
        compressed, _ = fuzz_cases.good_compressed(pictures, rng, header)
        input_checks.check_compressed(compressed, MAX_PIXELS)
    input_checks.check_camera_info(fuzz_cases.good_camera_info(pictures, header))


def test_camera_info_checks_name_the_problem(pictures):
    """Zero, negative and non-finite intrinsics are refused with the field named."""
    info = fuzz_cases.good_camera_info(pictures, array_to_image(pictures.rgb, 'rgb8').header)
    info.k = [0.0] * 9
    with pytest.raises(input_checks.RejectedInput, match='uncalibrated'):
        input_checks.check_camera_info(info)
    info.k = [math.nan] + [1.0] * 8
    with pytest.raises(input_checks.RejectedInput, match='K has non-finite'):
        input_checks.check_camera_info(info)


def test_rejection_log_allows_a_few_lines_per_kind_and_counts_the_rest():
    """Three lines of a kind per period; the next one says how many were not logged."""
    lines = []
    now = [0.0]
    log = RejectionLog(lines.append, period_s=5.0, burst=3, clock=lambda: now[0])
    logged = [log.record('size', f'size problem {i}') for i in range(10)]
    assert logged == [True] * 3 + [False] * 7
    assert log.record('encoding', 'another kind')
    now[0] = 5.5
    assert log.record('size', 'later')
    assert lines[-1] == ('later [7 more rejection(s) of kind size not logged since the previous '
                         'message of this kind]')


def test_short_fuzzing_run_keeps_the_nodes_up_and_answers_every_good_frame(tmp_path):
    """A few hundred malformed messages: no crash, all counted by kind, no good frame lost."""
    result = run_fuzz(SHORT_MALFORMED, per_good=25, seed=7, log_dir=str(tmp_path))
    summary = {key: value for key, value in result.items() if key != 'nodes'}
    assert result['malformed_messages'] == SHORT_MALFORMED, summary
    assert result['crashes'] == 0, result
    assert result['good_frames'] >= SHORT_MALFORMED // 25
    assert result['good_frames_unanswered'] == 0, result
    assert result['camera_info_outputs'] > 0 and result['camera_info_outputs_invalid'] == 0
    for node in result['nodes'].values():
        assert node['passed'], node
        assert node['diagnostics']['frames_rejected'] > 0
        # Throttled: each kind is logged, at most a few lines per period.
        lines = node['log_lines_by_kind']
        most = REJECTION_LOG_BURST * (math.ceil(result['seconds'] / REJECTION_LOG_PERIOD_S) + 1)
        for kind, sent in node['expected'].items():
            if kind not in (fuzz_cases.DECODER, fuzz_cases.GOOD) and sent:
                assert 1 <= lines.get(kind, 0) <= min(sent, most), (kind, lines)
    assert result['passed'], summary
    report = '\n'.join(fuzz_section(result))
    assert f'| malformed messages sent | {SHORT_MALFORMED} |' in report
    assert '**FAILED**' not in report
