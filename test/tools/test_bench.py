"""hydranet-bench: the console tool runs and prints well-formed JSON lines (speed not asserted)."""
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, require_shared

REQUIRED_KEYS = {
    'backend', 'precision', 'device', 'height', 'width', 'batch', 'threads',
    'median_ms', 'p90_ms', 'fps', 'reference_median_ms', 'speedup_vs_reference',
    'e2e_median_ms', 'e2e_p90_ms', 'e2e_fps', 'preprocess_ms', 'postprocess_ms',
    'preprocess_share', 'postprocess_share', 'label_agreement', 'depth_rel_diff',
    'max_abs_diff', 'cloud_ms', 'cloud_p90_ms', 'cloud_share_of_network',
}
EXACT_MAX_DIFF = 1e-4
TIMEOUT_S = 300


def _bench(args, cache_dir):
    environment = dict(os.environ, HYDRANET_CACHE_DIR=str(cache_dir))
    command = [sys.executable, '-m', 'hydranet_ros.tools.bench', *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True,
                          text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope='module')
def quick_run(nyud_checkpoint, tmp_path_factory):
    result = _bench(['--quick', '--model', str(nyud_checkpoint), '--sizes', '48x64,64x96',
                     '--batch', '1,2', '--threads', '1', '--precisions', 'fp32'],
                    tmp_path_factory.mktemp('cache'))
    assert result.returncode == 0, result.stderr
    return result


def test_quick_run_prints_one_json_line_per_configuration(quick_run):
    records = [json.loads(line) for line in quick_run.stdout.splitlines()]
    configurations = {(r['backend'], r['height'], r['width'], r['batch']) for r in records}
    assert configurations == {(backend, height, width, batch)
                              for backend in ('onnxruntime', 'torch')
                              for height, width in ((48, 64), (64, 96)) for batch in (1, 2)}
    assert len(records) == len(configurations)
    for record in records:
        assert REQUIRED_KEYS <= set(record), REQUIRED_KEYS - set(record)
        assert 'error' not in record
        assert record['precision'] == 'fp32' and record['threads'] == 1
        for key in ('median_ms', 'p90_ms', 'fps', 'reference_median_ms', 'e2e_median_ms'):
            assert math.isfinite(record[key]) and record[key] > 0, key
        assert record['p90_ms'] >= record['median_ms']
        assert math.isclose(record['fps'], record['batch'] * 1000 / record['median_ms'])
        assert math.isclose(record['speedup_vs_reference'],
                            record['reference_median_ms'] / record['median_ms'])
        assert 0 < record['postprocess_share'] < 1 and 0 <= record['preprocess_share'] < 1
        assert record['label_agreement'] == 1.0
        assert record['max_abs_diff'] <= EXACT_MAX_DIFF
        assert record['cloud_ms'] > 0 and math.isclose(
            record['cloud_share_of_network'],
            record['cloud_ms'] * record['batch'] / record['median_ms'])


def test_progress_goes_to_stderr_only(quick_run):
    assert 'hydranet-bench' in quick_run.stderr
    assert all(line.startswith('{') for line in quick_run.stdout.splitlines())


def test_int8_line_reports_its_agreement(nyud_checkpoint, tmp_path):
    result = _bench(['--quick', '--model', str(nyud_checkpoint), '--backends', 'onnxruntime',
                     '--precisions', 'int8', '--reference-repeats', '0'], tmp_path)
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record['precision'] == 'int8'
    assert record['reference_median_ms'] is None and record['speedup_vs_reference'] is None
    assert 0.5 < record['label_agreement'] <= 1.0
    assert record['max_abs_diff'] > EXACT_MAX_DIFF


def test_bad_options_exit_with_usage_code(tmp_path):
    result = _bench(['--model', str(tmp_path / 'missing.pth'), '--quick'], tmp_path)
    assert result.returncode == 2
    assert 'missing.pth' in result.stderr and not result.stdout
    require_shared(REPO_ROOT.parent / 'shared')
    result = _bench(['--quick', '--sizes', '8x8'], tmp_path)
    assert result.returncode == 2 and 'too small' in result.stderr
