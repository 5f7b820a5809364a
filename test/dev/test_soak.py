"""A short soak of hydranet_node: every frame accounted for, no crash (speed is not asserted).

The long form is ``python -m dev.reliability.soak --minutes 10`` (see docs/reliability.md);
here a 640x480 camera at 30 Hz runs for about half a minute against a node with a small
network input, in its own process over real DDS.
"""
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')
pytest.importorskip('psutil', reason='the soak samples the node memory with psutil')

from hydranet_ros.node.camera_input import SequenceGaps  # noqa: E402
from dev.reliability.report import soak_section  # noqa: E402
from dev.reliability.soak import parse_args, run_soak  # noqa: E402

PERIODS = 3


def test_sequence_gaps_count_frames_that_never_arrived():
    """Gaps per publisher; first messages, unknown numbers and restarts count nothing."""
    gaps = SequenceGaps(max_publishers=2)
    assert [gaps.missing('a', n) for n in (5, 6, 9, 10)] == [0, 0, 2, 0]
    assert gaps.missing('b', 100) == 0 and gaps.missing('b', 0) == 0
    assert gaps.missing('a', 1) == 0, 'a restarted publisher counts no loss'
    assert gaps.missing('c', 7) == 0 and gaps.missing('b', 103) == 0, 'b was forgotten'


def test_short_soak_accounts_for_every_frame_and_the_node_survives(tmp_path):
    """Published = received = processed + dropped + rejected; memory and latency reported."""
    args = parse_args(['--minutes', '0.4', '--warmup-s', '5', '--bin-s', '8',
                       '--backend', 'torch', '--input-size', '120x160',
                       '--log-dir', str(tmp_path)])
    result = run_soak(args)
    summary = {key: value for key, value in result.items() if key != 'per_period'}
    assert result['targets']['no_crash'], summary
    assert result['frames_published'] > 100, summary
    assert result['frames_processed'] > 0, summary
    assert result['sent_equals_received_plus_lost'], summary
    assert result['frames_received'] == result['accounted'], summary
    assert result['frames_received'] == (
        result['frames_processed'] + result['frames_dropped'] + result['frames_rejected']
        + result['frames_skipped_no_subscribers'] + result['frames_failed']), summary
    assert result['targets']['every_drop_counted'], summary
    assert len(result['per_period']) == PERIODS
    assert all(period['outputs'] > 0 for period in result['per_period']), result['per_period']
    assert result['rss_mb_after_warmup'] > 0 and 'rss_growth_mb' in result
    assert result['latency_ms_p99'] >= result['latency_ms_p50'] > 0
    report = '\n'.join(soak_section(result))
    assert '= received: held' in report and 'RSS growth after warm-up' in report
    assert report.count('\n| ') >= PERIODS + 10
