"""hydranet-train and hydranet-eval end to end, on tiny generated sets and the NYUDv2 sample."""
import json
import math

import pytest
import torch

from conftest import require_shared, SAMPLES_DIR
from hydranet_ros.model import load_hydranet, read_checkpoint_file
from hydranet_ros.tools import evaluate, train

TINY = ['--data', 'scenes', '--height', '64', '--width', '96', '--limit-train', '8',
        '--limit-val', '4', '--batch-size', '4', '--threads', '2', '--warmup-steps', '1']


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_every_flag_has_help():
    for parser in (train.build_parser(), evaluate.build_parser()):
        for action in parser._actions:
            assert action.help, f'{parser.prog} {action.option_strings} has no help'


def test_dry_run_writes_a_resumable_checkpoint(tmp_path):
    assert train.main(TINY + ['--dry-run', '--out', str(tmp_path)]) == 0
    content = read_checkpoint_file(tmp_path / 'last.pt')
    state = content['extra']['training_state']
    assert state['global_step'] == 1
    assert content['config']['class_names'][0] == 'sky'
    assert content['config']['max_depth_m'] == 80.0
    assert content['config']['notes']['image_size'] == [64, 96]


def test_train_stop_resume_then_evaluate(tmp_path, capsys):
    out = tmp_path / 'run'
    common = TINY + ['--epochs', '2', '--out', str(out), '--seed', '1']
    assert train.main(common + ['--max-steps', '3']) == 0
    assert read_checkpoint_file(out / 'last.pt')['extra']['training_state']['global_step'] == 3
    assert train.main(common + ['--resume', '--half-copy', str(tmp_path / 'half.pt')]) == 0
    log = capsys.readouterr().out
    assert 'resumed at epoch 1, step 1 of 2 (3 steps done)' in log
    best = load_hydranet(out / 'best.pt')
    training = best.checkpoint_extra['training']
    assert training['settings']['notes']['command'].startswith('hydranet-train ')
    half = read_checkpoint_file(tmp_path / 'half.pt')
    assert half['state_dict']['heads.depth.out.weight'].dtype == torch.float16
    epochs = (out / 'epochs.csv').read_text().splitlines()
    assert len(epochs) == 3 and 'val_miou' in epochs[0]

    report = tmp_path / 'eval.json'
    assert evaluate.main(['--model', str(out / 'best.pt'), '--data', 'scenes', '--limit', '3',
                          '--predictor', 'model', '--json', str(report), '--threads', '2']) == 0
    metrics = json.loads(report.read_text())
    assert metrics['frames'] == 3 and metrics['image_size'] == [64, 96]
    assert 0.0 <= metrics['segmentation']['miou'] <= 1.0
    assert 'AbsRel' in capsys.readouterr().out


def test_evaluate_reference_checkpoint_on_the_nyud_sample(nyud_checkpoint, tmp_path):
    root = require_shared(SAMPLES_DIR / 'nyud_joint')
    reports = {}
    for predictor in ('engine', 'model'):
        path = tmp_path / f'{predictor}.json'
        args = ['--model', str(nyud_checkpoint), '--data', 'nyud', '--data-root', str(root),
                '--split', '', '--predictor', predictor, '--json', str(path), '--threads', '2']
        if predictor == 'engine':
            args += ['--worst', '1', '--worst-dir', str(tmp_path / 'worst')]
        assert evaluate.main(args) == 0
        reports[predictor] = json.loads(path.read_text())
    for report in reports.values():
        segmentation, depth = report['segmentation'], report['depth']
        assert report['frames'] == 1 and report['depth_range_m'] == [0.0, 10.0]
        assert 0.0 <= segmentation['miou'] <= 1.0
        assert 0.0 <= segmentation['pixel_accuracy'] <= 1.0
        ious = [v for v in segmentation['per_class_iou'].values() if v is not None]
        assert segmentation['miou'] == pytest.approx(sum(ious) / len(ious))
        assert len(segmentation['per_class_iou']) == 40
        assert depth['pixels'] > 100000
        assert 0.0 <= depth['delta1'] <= depth['delta2'] <= depth['delta3'] <= 1.0
        assert depth['abs_rel'] > 0.0 and depth['rmse'] > 0.0 and math.isfinite(depth['rmse_log'])
    # The engine runs the network at the picture's own size, as the model predictor does.
    engine, model = reports['engine'], reports['model']
    assert engine['segmentation']['pixel_accuracy'] == pytest.approx(
        model['segmentation']['pixel_accuracy'], abs=0.01)
    assert engine['depth']['delta1'] == pytest.approx(model['depth']['delta1'], abs=0.01)
    assert len(engine['worst_frames']) == 1
