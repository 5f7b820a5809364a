"""hydranet-infer as users run it: the installed command on real images with a real model."""
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import require_shared, SAMPLES_DIR
from hydranet_ros.engine import InferenceEngine
from hydranet_ros.engine.depth_rules import apply_depth_rules, depth_rules
from hydranet_ros.model import build_hydranet, get_preset, save_hydranet
from hydranet_ros.tools import infer as infer_tool
from hydranet_ros.tools.image_io import find_images, read_image_rgb
from hydranet_ros.tools.panel import MIN_TILE_WIDTH_PX
from hydranet_ros.tools.prediction_files import DEFAULT_OUTPUTS, OUTPUT_KINDS, \
    parse_output_kinds

TOOL_TIMEOUT_S = 300
SMALL_SIZE_PX = (160, 120)  # width, height
ALPHA = 0.7
CHECKPOINT_SEED = 7
THREADS = 2  # the tool and the reference engine here: results then match exactly
ENGINE_ARGS = ('--backend', 'torch', '--device', 'cpu', '--threads', str(THREADS))
BUNDLED_TRAINING_SIZE = (96, 320)
KITTI_SKY = 0
KITTI_FOCAL_PX = 721.5377
SAME_DEPTH_RTOL = 1e-3
SAME_LABELS_FRACTION = 0.999


def tool_command() -> list:
    """Return the installed console script, or the module when it is not installed."""
    script = pathlib.Path(sys.executable).with_name('hydranet-infer')
    return ([str(script)] if script.exists()
            else [sys.executable, '-m', 'hydranet_ros.tools.infer'])


def run_tool(*args: str) -> subprocess.CompletedProcess:
    """Run hydranet-infer and return the finished process (output captured)."""
    return subprocess.run(tool_command() + [str(a) for a in args], capture_output=True,
                          text=True, timeout=TOOL_TIMEOUT_S)


def sample_rgb() -> np.ndarray:
    """Return the NYUv2 sample photo as RGB."""
    path = require_shared(SAMPLES_DIR / 'nyud_joint' / '000464.png')
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope='module')
def fixed_threads():
    """Run reference inference here with the tool's thread count; restore it afterwards."""
    previous = torch.get_num_threads()
    yield THREADS
    torch.set_num_threads(previous)


@pytest.fixture(scope='module')
def engine(nyud_checkpoint, fixed_threads) -> InferenceEngine:
    """Return the engine the tool is run with (torch on the CPU, fp32, same thread count)."""
    return InferenceEngine(str(nyud_checkpoint), device='cpu', backend='torch',
                           precision='fp32', threads=fixed_threads, overlay_alpha=ALPHA)


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory) -> pathlib.Path:
    """Return a folder of small images in three formats, one in a sub-folder, one corrupt."""
    folder = tmp_path_factory.mktemp('images')
    small = cv2.resize(sample_rgb(), SMALL_SIZE_PX, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / 'room.png'), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    (folder / 'sub').mkdir()
    cv2.imwrite(str(folder / 'sub' / 'room.jpg'), cv2.cvtColor(small[:, ::-1], cv2.COLOR_RGB2BGR))
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(folder / 'sub' / 'grey16.png'), grey)
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    return folder


@pytest.fixture(scope='module')
def folder_run(image_folder, nyud_checkpoint, tmp_path_factory):
    """Run the tool once over the folder (recursive) plus the full-size sample image."""
    out = tmp_path_factory.mktemp('out')
    sample = require_shared(SAMPLES_DIR / 'nyud_joint' / '000464.png')
    result = run_tool(image_folder, sample, '--recursive', '--out', out, '--model',
                      nyud_checkpoint, *ENGINE_ARGS,
                      '--alpha', ALPHA)
    summary = json.loads((out / 'summary.json').read_text())
    return result, out, summary


def expected_inputs(image_folder: pathlib.Path) -> dict:
    """Return output stem -> RGB image the tool must have seen, decoded independently here."""
    jpeg = cv2.imread(str(image_folder / 'sub' / 'room.jpg'), cv2.IMREAD_COLOR)
    grey16 = cv2.imread(str(image_folder / 'sub' / 'grey16.png'), cv2.IMREAD_UNCHANGED)
    grey8 = (grey16 // 257).astype(np.uint8)
    room = cv2.imread(str(image_folder / 'room.png'), cv2.IMREAD_COLOR)
    return {
        'room': cv2.cvtColor(room, cv2.COLOR_BGR2RGB),
        'sub/room': cv2.cvtColor(jpeg, cv2.COLOR_BGR2RGB),
        'sub/grey16': cv2.cvtColor(grey8, cv2.COLOR_GRAY2RGB),
        '000464': sample_rgb(),
    }


def test_unreadable_file_is_reported_and_the_others_are_written(folder_run, image_folder):
    result, out, summary = folder_run
    assert result.returncode == 1, result.stderr
    assert 'broken.png' in result.stderr and 'not a readable image' in result.stderr
    assert [entry['input'] for entry in summary['failed']] == [str(image_folder / 'broken.png')]
    assert sorted(entry['name'] for entry in summary['images']) == \
        sorted(expected_inputs(image_folder))
    assert not list(out.glob('broken_*'))


def test_files_match_the_engine(folder_run, image_folder, engine):
    _, out, summary = folder_run
    entries = {entry['name']: entry for entry in summary['images']}
    for stem, rgb in expected_inputs(image_folder).items():
        height, width = rgb.shape[:2]
        expected = engine.infer(rgb)
        written = {kind: out / (stem + OUTPUT_KINDS[kind][0]) for kind in DEFAULT_OUTPUTS}
        assert not written['normals'].exists(), 'a two-task model has no normals'

        depth = np.load(written['depth_npy'])
        assert depth.dtype == np.float32 and depth.shape == (height, width)
        assert np.array_equal(np.isnan(depth), np.isnan(expected.depth)), stem
        assert np.array_equal(depth[np.isfinite(depth)],
                              expected.depth[np.isfinite(expected.depth)]), stem

        labels = cv2.imread(str(written['labels']), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and np.array_equal(labels, expected.labels), stem
        overlay = cv2.cvtColor(cv2.imread(str(written['overlay'])), cv2.COLOR_BGR2RGB)
        assert np.array_equal(overlay, expected.overlay), stem
        depth_rgb = cv2.cvtColor(cv2.imread(str(written['depth'])), cv2.COLOR_BGR2RGB)
        assert np.array_equal(depth_rgb, engine.colorize_depth(expected.depth)), stem
        panel = cv2.imread(str(written['panel']))
        factor = -(-MIN_TILE_WIDTH_PX // width)  # small pictures are enlarged in the panel
        assert panel.shape[1] > 3 * width * factor and panel.shape[0] > height * factor
        enlarged = np.repeat(np.repeat(depth_rgb, factor, axis=0), factor, axis=1)
        right_tile = cv2.cvtColor(panel[height * factor // 2:height * factor, -width * factor:],
                                  cv2.COLOR_BGR2RGB)
        assert np.array_equal(right_tile, enlarged[height * factor // 2:]), \
            'depth is on the right'

        entry = entries[stem]
        assert (entry['width'], entry['height']) == (width, height)
        assert entry['ms'] > 0
        assert set(entry['outputs']) == set(DEFAULT_OUTPUTS) - {'normals'}
        counts = np.bincount(expected.labels.ravel())
        top = entry['classes_top5']
        assert 1 <= len(top) <= 5
        assert top[0]['id'] == int(np.argmax(counts))
        assert top[0]['name'] == engine.config.class_names[top[0]['id']]
        assert top[0]['pixels'] == int(counts.max())
        valid = expected.depth[np.isfinite(expected.depth)]
        stats = entry['depth_m']
        assert stats['valid_fraction'] == pytest.approx(valid.size / expected.depth.size,
                                                        abs=1e-6)
        if valid.size:
            assert stats['min_m'] == pytest.approx(float(valid.min()), abs=1e-4)
            assert stats['median_m'] == pytest.approx(float(np.median(valid)), abs=1e-4)
            assert stats['max_m'] == pytest.approx(float(valid.max()), abs=1e-4)
    assert summary['class_names'] == list(engine.config.class_names)
    assert summary['depth_range_m'] == [engine.config.min_depth_m, engine.config.max_depth_m]
    assert summary['totals']['processed'] == 4 and summary['totals']['failed'] == 1


def test_three_task_model_writes_normals_and_confidence(tmp_path, fixed_threads):
    torch.manual_seed(CHECKPOINT_SEED)
    model = build_hydranet(get_preset('nyud40_three')).eval()
    checkpoint = tmp_path / 'three.pt'
    save_hydranet(model, checkpoint)
    image = cv2.resize(sample_rgb(), (96, 72), interpolation=cv2.INTER_AREA)
    image_path = tmp_path / 'frame.png'
    cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    out = tmp_path / 'out'
    result = run_tool(image_path, '--out', out, '--model', checkpoint, *ENGINE_ARGS,
                      '--outputs', 'normals,confidence,labels',
                      '--input-size', '64x96', '--quiet')
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''
    assert sorted(p.name for p in out.iterdir()) == [
        'frame_confidence.png', 'frame_labels.png', 'frame_normals.png', 'summary.json']
    expected = InferenceEngine(str(checkpoint), device='cpu', backend='torch',
                               input_size=(64, 96), threads=fixed_threads).infer(image)
    normals = cv2.imread(str(out / 'frame_normals.png'))
    assert normals.shape == (72, 96, 3)
    confidence = cv2.imread(str(out / 'frame_confidence.png'), cv2.IMREAD_UNCHANGED)
    assert confidence.dtype == np.uint8
    assert np.abs(confidence.astype(int) - np.rint(expected.confidence * 255)).max() == 0
    labels = cv2.imread(str(out / 'frame_labels.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels, expected.labels)
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['input_size'] == [64, 96] and summary['tasks'] == ['segm', 'depth', 'normals']


def test_missing_model_exits_2_with_advice(tmp_path, image_folder):
    out = tmp_path / 'out'
    result = run_tool(image_folder / 'room.png', '--out', out, '--model', tmp_path / 'none.pt')
    assert result.returncode == 2
    assert 'none.pt' in result.stderr and 'does not exist' in result.stderr
    assert '--model' in result.stderr
    assert not out.exists()


def test_no_images_and_bad_options_exit_2(tmp_path, nyud_checkpoint, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert infer_tool.main([str(empty), '--model', str(nyud_checkpoint), '--out',
                            str(tmp_path / 'out')]) == 2
    assert 'no images found' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        infer_tool.main([str(empty), '--outputs', 'depth,holograms'])
    assert exited.value.code == 2 and 'holograms' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        infer_tool.main([str(empty), '--input-size', '480'])
    assert exited.value.code == 2 and 'HEIGHTxWIDTH' in capsys.readouterr().err


def test_output_selection_parsing():
    assert parse_output_kinds('labels, depth_npy') == ('labels', 'depth_npy')
    assert parse_output_kinds('all') == tuple(OUTPUT_KINDS)
    assert parse_output_kinds('default,confidence') == DEFAULT_OUTPUTS + ('confidence',)
    with pytest.raises(ValueError, match='unknown output'):
        parse_output_kinds('depth,labelz')


def test_folder_search_names_and_excludes_the_output_folder(tmp_path):
    for relative in ('a.png', 'a.jpg', 'b.JPEG', 'notes.txt', 'sub/a.png', 'out/old.png'):
        path = tmp_path / relative
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b'')
    flat = find_images([str(tmp_path)], recursive=False)
    assert [job.stem for job in flat] == ['a_jpg', 'a_png', 'b']
    deep = find_images([str(tmp_path)], recursive=True, exclude_dir=str(tmp_path / 'out'))
    assert [job.stem for job in deep] == ['a_jpg', 'a_png', 'b', 'sub/a']


def test_reading_formats_into_rgb(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    cv2.imwrite(str(tmp_path / 'alpha.png'), rgba)  # OpenCV writes BGRA: blue 200
    assert read_image_rgb(str(tmp_path / 'alpha.png'))[0, 0].tolist() == [0, 0, 200]
    cv2.imwrite(str(tmp_path / 'grey.tiff'), np.full((10, 12), 65535, np.uint16))
    assert read_image_rgb(str(tmp_path / 'grey.tiff'))[0, 0].tolist() == [255, 255, 255]


def test_bundled_model_runs_at_its_training_size_as_the_engine_does(tmp_path):
    """Default options: the bundled model at 96x320, the same depth and labels as the engine."""
    sample = require_shared(SAMPLES_DIR / 'kitti_joint' / '000099.png')
    out = tmp_path / 'out'
    result = run_tool(sample, '--out', out, '--outputs', 'depth_npy,labels')
    assert result.returncode == 0, result.stderr
    assert 'network input 96x320 (the training size recorded in the checkpoint)' in \
        result.stdout
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['input_size'] == list(BUNDLED_TRAINING_SIZE)
    assert summary['network_input'].startswith('network input 96x320')
    rgb = read_image_rgb(str(sample))
    engine = InferenceEngine(None)
    assert engine.plan.input_size == BUNDLED_TRAINING_SIZE
    # The node's depth rules: sky NaN; no focal length given, so no rescaling.
    expected = apply_depth_rules(engine.infer(rgb), depth_rules(engine.config))
    assert np.isnan(expected.depth[expected.labels == KITTI_SKY]).all()
    depth = np.load(out / f'000099{OUTPUT_KINDS["depth_npy"][0]}')
    assert np.array_equal(np.isnan(depth), np.isnan(expected.depth))
    finite = np.isfinite(depth)
    assert np.allclose(depth[finite], expected.depth[finite], rtol=SAME_DEPTH_RTOL, atol=0)
    labels = cv2.imread(str(out / f'000099{OUTPUT_KINDS["labels"][0]}'), cv2.IMREAD_UNCHANGED)
    assert (labels == expected.labels).mean() >= SAME_LABELS_FRACTION
    assert summary['images'][0]['depth_m']['median_m'] == pytest.approx(
        float(np.nanmedian(expected.depth)), rel=SAME_DEPTH_RTOL)


def test_point_files_hold_the_back_projected_depth_with_labels(tmp_path):
    """--outputs points_ply,points_pcd with --focal-px: the valid depth through K, labelled."""
    plyfile = pytest.importorskip('plyfile')
    pypcd4 = pytest.importorskip('pypcd4')
    sample = require_shared(SAMPLES_DIR / 'kitti_joint' / '000099.png')
    out = tmp_path / 'out'
    result = run_tool(sample, '--out', out, '--focal-px', str(KITTI_FOCAL_PX),
                      '--outputs', 'depth_npy,labels,points_ply,points_pcd', '--quiet')
    assert result.returncode == 0, result.stderr
    depth = np.load(out / f'000099{OUTPUT_KINDS["depth_npy"][0]}')
    labels = cv2.imread(str(out / f'000099{OUTPUT_KINDS["labels"][0]}'), cv2.IMREAD_UNCHANGED)
    height, width = depth.shape
    valid = np.isfinite(depth)
    assert np.isnan(depth[labels == KITTI_SKY]).all() and (labels == KITTI_SKY).any()
    rows, cols = np.nonzero(valid)
    z = depth[valid].astype(np.float64)
    x = (cols - (width - 1) / 2.0) * z / KITTI_FOCAL_PX
    y = (rows - (height - 1) / 2.0) * z / KITTI_FOCAL_PX
    rgb = read_image_rgb(str(sample))[valid]
    vertices = plyfile.PlyData.read(str(out / '000099_points.ply'))['vertex'].data
    pcd = pypcd4.PointCloud.from_path(out / '000099_points.pcd').numpy()
    assert len(vertices) == len(pcd) == int(valid.sum())
    for name, expected in (('x', x), ('y', y), ('z', z)):
        np.testing.assert_allclose(vertices[name], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pcd[:, :3], np.stack([vertices['x'], vertices['y'],
                                                        vertices['z']], axis=1))
    assert np.array_equal(vertices['label'], labels[valid])
    assert np.array_equal(pcd[:, 4], labels[valid])
    assert np.array_equal(np.stack([vertices['red'], vertices['green'], vertices['blue']], 1),
                          rgb)
    packed = pcd[:, 3].astype(np.float32).view(np.uint32)
    assert np.array_equal(packed >> 16 & 255, rgb[:, 0]) and np.array_equal(packed & 255,
                                                                            rgb[:, 2])
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['depth_rules']['focal_px'] == [KITTI_FOCAL_PX] * 2
    assert summary['images'][0]['depth_scale'] == pytest.approx(
        (KITTI_FOCAL_PX * 320 / width + KITTI_FOCAL_PX * 96 / height) / 2 / (0.58 * 320),
        rel=1e-5)


@pytest.mark.parametrize('signals', [('SIGINT',), ('SIGTERM',), ('SIGINT', 'SIGTERM')])
def test_a_stop_signal_ends_a_folder_run_with_status_0(tmp_path, signals):
    """Ctrl-C or SIGTERM (and a second signal while it stops): exit 0, no traceback."""
    import shutil
    import signal
    import time
    sample = pathlib.Path(infer_tool.__file__).parents[1] / 'assets' / 'samples' / \
        'kitti_000099.png'
    folder = tmp_path / 'in'
    folder.mkdir()
    for index in range(200):
        shutil.copy(sample, folder / f'frame{index:03d}.png')
    out = tmp_path / 'out'
    process = subprocess.Popen([sys.executable, '-m', 'hydranet_ros.tools.infer', str(folder),
                                '--out', str(out), '--outputs', 'depth_npy'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300.0
    while not list(out.glob('*_depth.npy')) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    for name in signals:
        process.send_signal(getattr(signal, name))
        time.sleep(0.1)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert 'Traceback' not in stdout + stderr
    assert 'interrupted' in stderr and len(list(out.glob('*_depth.npy'))) < 200
