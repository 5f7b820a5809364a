"""The CPU ablation rig runs every variant and the exact ones agree (speed not asserted)."""
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT

EXACT_MAX_DIFF = 1e-4
TIMEOUT_S = 300


def test_ablation_times_every_step_and_the_exact_ones_agree(nyud_checkpoint, tmp_path):
    environment = dict(os.environ, HYDRANET_CACHE_DIR=str(tmp_path))
    command = [sys.executable, '-m', 'dev.bench.ablation', '--quick', '--model',
               str(nyud_checkpoint), '--threads', '1', '--no-int8']
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True,
                            text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    names = [record['ablation'] for record in records]
    assert names[0] == 'upstream_eager' and 'ort_shipped' in names and 'ort_int8' not in names
    assert len(set(names)) == len(names) >= 10
    for record in records:
        assert record['median_ms'] > 0 and record['label_agreement'] == 1.0, record['ablation']
        assert record['max_abs_diff'] <= EXACT_MAX_DIFF, record['ablation']
        assert record['height'] == 48 and record['width'] == 64 and record['threads'] == 1
