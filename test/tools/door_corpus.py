"""Bad inputs for every door of the command-line tools, generated here, with what each must say.

Each case names a tool, a bad input written into a work folder, the exit code the tool must
end with (0 done, 1 a failure while running, 2 bad usage or input) and fragments its output
must hold. The tools run in this process through their ``main`` (output captured; one process
shares the libraries and the CPU caches), and no case may end with an exception escaping
``main``, a traceback in the output or advice to load a checkpoint with ``weights_only`` off.

Checkpoint loading has cases of its own (``load_hydranet`` on each file); the bag fuzz cuts and
bit-flips a real small recording (sqlite3 and MCAP) at many offsets.

Run it alone, writing the figures for docs/reliability.md::

    python test/tools/door_corpus.py --json-out tools.json
"""
import argparse
import collections
import contextlib
import dataclasses
import gzip
import io
import json
import logging
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import time
import zipfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import cv2
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from hydranet_ros.engine.default_model import default_model_path
from hydranet_ros.model import build_hydranet, CheckpointError, HydraNetConfig, load_hydranet, \
    save_hydranet
from hydranet_ros.model.checkpoint_file import unsafe_advice_in
from hydranet_ros.tools import bag, bench, evaluate, infer, train
from hydranet_ros.tools.image_io import DEFAULT_MAX_INPUT_PIXELS

ENGINE = ('--backend', 'torch', '--device', 'cpu', '--threads', '1')
SAMPLE = pathlib.Path(default_model_path()).parent / 'samples' / 'kitti_000099.png'
FRAME_SIZE = (32, 48)  # height, width of the frames in the generated bags
STORE = get_typestore(Stores.ROS2_KILTED)
TYPES = STORE.types
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
FIRST_STAMP_S = 1_700_000_000
BAG_FUZZ_SEED = 15
BAG_FUZZ_OFFSETS = 10  # per storage and per kind of damage (cut, bit flip)
BIG_PHOTO_SIZE = (6000, 8000)  # height, width: a 48 MP camera photo
UNSAFE = re.compile(r'weights_only\s*(=|set to|to)\s*`?False|safe_globals|trusted source',
                    re.IGNORECASE)
TOOLS = {'hydranet-infer': infer.main, 'hydranet-bag': bag.main,
         'hydranet-eval': evaluate.main, 'hydranet-train': train.main,
         'hydranet-bench': bench.main}
CHECKPOINT = 'checkpoint loading'
UNKNOWN_DIGEST = 'RIHS01_' + '0' * 64


@dataclasses.dataclass
class Case:
    """One bad input: the tool, how to make it, the exit code and what the output must say.

    ``argv`` gets the work folder and returns the tool's arguments, writing the input it
    needs; ``fragments`` must all appear in the output (paths written as ``{dir}``).
    """

    tool: str
    name: str
    what: str
    argv: Callable[[pathlib.Path], List[str]]
    code: int
    fragments: Tuple[str, ...] = ()
    bad_inputs: int = 1
    check: Optional[Callable[[pathlib.Path, str], Optional[str]]] = None


@dataclasses.dataclass
class Outcome:
    """What a case did: exit code, output, and every way it broke the rules."""

    case: Case
    code: Optional[int]
    output: str
    seconds: float
    problems: List[str]


# ------------------------------------------------------------------ generated inputs
def write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    """Write ``data`` to ``path`` (creating folders) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sample_rgb(height: int, width: int) -> np.ndarray:
    """Return the shipped street sample resized to (height, width), RGB."""
    bgr = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    return cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


def encoded(rgb: np.ndarray, extension: str) -> bytes:
    """Return an RGB picture encoded as PNG or JPEG bytes."""
    ok, data = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def png_claiming(width: int, height: int) -> bytes:
    """Return a tiny PNG whose header claims a huge picture (a decompression bomb)."""
    data = bytearray(encoded(sample_rgb(8, 8), '.png'))
    data[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    return bytes(data)


class Payload:
    """Pickles into a call that creates a marker file if it is ever executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class SystemCall:
    """Pickles into os.system: the classic hostile checkpoint."""

    def __reduce__(self):
        return (os.system, ('true',))


class Custom:
    """An ordinary class pickled by value."""

    def __init__(self) -> None:
        self.weights = [1.0]


def small_checkpoint(path: pathlib.Path, num_classes: int = 4) -> pathlib.Path:
    """Write a small random-weight HydraNet in the project format."""
    torch.manual_seed(0)
    save_hydranet(build_hydranet(HydraNetConfig(num_classes=num_classes)), path)
    return path


def good_checkpoint_bytes(work: pathlib.Path) -> bytes:
    """Return the bytes of a real checkpoint (written once per work folder)."""
    path = work / 'inputs' / 'good.pt'
    if not path.exists():
        small_checkpoint(path)
    return path.read_bytes()


Maker = Callable[[pathlib.Path], object]


def checkpoint_inputs(work: pathlib.Path) -> Dict[str, Tuple[Maker, str, Tuple[str, ...]]]:
    """Return name -> (writer of the file, what it is, fragments the diagnosis must hold)."""
    good = good_checkpoint_bytes(work)
    marker = str(work / 'payload_ran')

    def torch_save(content):
        return lambda path: torch.save(content, path)

    def legacy_truncated(path):
        torch.save({'w': torch.zeros(1000)}, path, _use_new_zipfile_serialization=False)
        path.write_bytes(path.read_bytes()[:60])

    def wrong_classes(path):
        content = torch.load(io.BytesIO(good), weights_only=True)
        content['config'] = dict(content['config'], num_classes=6)
        torch.save(content, path)

    def torchscript(path):
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))

    def other_zip(path):
        with zipfile.ZipFile(path, 'w') as archive:
            archive.writestr('notes.txt', 'hello')

    def fifo(path):
        os.mkfifo(path)

    return {
        'missing.pt': (lambda path: None, 'a path that does not exist', ('does not exist',)),
        'folder.pt': (lambda path: path.mkdir(), 'a directory', ('is a directory',)),
        'fifo.pt': (fifo, 'a named pipe (reading it would block)', ('not a regular file',)),
        'empty.pt': (lambda path: path.write_bytes(b''), 'an empty file',
                     ('is empty (0 bytes)',)),
        'random.pt': (lambda path: path.write_bytes(random.Random(1).randbytes(4096)),
                      '4 KiB of random bytes', ('not a PyTorch checkpoint', 'unknown kind')),
        'notes.pt': (lambda path: path.write_text('weights: see the wiki\n' * 20),
                     'a text file', ('not a PyTorch checkpoint', 'text file')),
        'picture.pt': (lambda path: path.write_bytes(encoded(sample_rgb(16, 16), '.png')),
                       'a PNG picture named .pt', ('it is a PNG image',)),
        'page.pt': (lambda path: path.write_text('<!DOCTYPE html><html>sign in</html>'),
                    'a web page saved instead of the file', ('HTML',)),
        'lfs.pt': (lambda path: path.write_text(
            'version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 9\n'),
                   'a Git LFS pointer', ('Git LFS pointer', 'git lfs pull')),
        'packed.pt': (lambda path: path.write_bytes(gzip.compress(good[:4096])),
                      'a gzip-compressed checkpoint', ('gzip', 'decompress')),
        'cut_3.pt': (lambda path: path.write_bytes(good[:3]), 'the first 3 bytes',
                     ('is truncated',)),
        'cut_half.pt': (lambda path: path.write_bytes(good[:len(good) // 2]),
                        'the first half of a checkpoint', ('is truncated',)),
        'cut_tail.pt': (lambda path: path.write_bytes(good[:-64]),
                        'a checkpoint without its last 64 bytes', ('is truncated',)),
        'legacy_cut.pt': (legacy_truncated, 'an old-format (pickle) checkpoint cut short',
                          ('is truncated',)),
        'notes.zip.pt': (other_zip, 'a zip archive of other files',
                         ('zip archive but not a PyTorch checkpoint',)),
        'script.pt': (torchscript, 'a TorchScript program', ('TorchScript',)),
        'payload.pt': (torch_save({'state_dict': {}, 'x': Payload(marker)}),
                       'a pickle that would create a file (pathlib.Path.touch)',
                       ('was refused', 'pathlib')),
        'system.pt': (torch_save({'x': SystemCall()}), 'a pickle that would call os.system',
                      ('was refused', 'system')),
        'module.pt': (torch_save(torch.nn.Conv2d(1, 1, 1)), 'a whole pickled nn.Module',
                      ('was refused', 'whole pickled network')),
        'numpy.pt': (torch_save({'w': np.zeros(3)}), 'NumPy arrays',
                     ('was refused', 'NumPy')),
        'custom.pt': (torch_save({'w': Custom()}), 'an object of a class of its own',
                      ('was refused', 'Custom')),
        'tensor.pt': (torch_save(torch.zeros(3)), 'a bare tensor', ('expected a dict',)),
        'no_state.pt': (torch_save({'weights': {'a': 1}}), 'a dict without state_dict',
                        ('no state_dict',)),
        'strings.pt': (torch_save({'state_dict': {'conv.weight': 'zeros'}}),
                       'a state_dict holding text', ('not a tensor',)),
        'other_net.pt': (torch_save({'state_dict': torch.nn.Conv2d(3, 8, 3).state_dict()}),
                         'weights of another network', ('not a HydraNet',)),
        'wrong_classes.pt': (wrong_classes, 'a config of 6 classes over 4-class weights',
                             ('does not fit', 'shape mismatch')),
    }


def image_folder_inputs() -> Dict[str, Tuple[Callable[[pathlib.Path], object], str, str]]:
    """Return file name -> (writer, what it is, fragment of its skip line) for a folder run."""
    jpeg = encoded(sample_rgb(48, 64), '.jpg')
    png = encoded(sample_rgb(48, 64), '.png')
    return {
        'empty.png': (lambda path: path.write_bytes(b''), 'an empty file', 'the file is empty'),
        'cut.png': (lambda path: path.write_bytes(png[:len(png) // 3]), 'a PNG cut short',
                    'not a readable image'),
        'cut.jpg': (lambda path: path.write_bytes(jpeg[:40]), 'a JPEG cut in its header',
                    'not a readable image'),
        'noise.png': (lambda path: path.write_bytes(random.Random(2).randbytes(3000)),
                      'random bytes named .png', 'not a readable image'),
        'letter.jpg': (lambda path: path.write_text('Dear user,\n' * 30),
                       'a text file named .jpg', 'not a readable image'),
        'bomb.png': (lambda path: path.write_bytes(png_claiming(100_000, 100_000)),
                     'a PNG claiming 100000x100000 px',
                     'is 100000x100000 px (10000.0 MP), too large to decode'),
        'tiny.png': (lambda path: path.write_bytes(encoded(sample_rgb(2, 2), '.png')),
                     'a 2x2 px picture', 'px'),
    }


# ------------------------------------------------------------------ bags
def header(index: int):
    """Return the header of frame ``index``."""
    stamp = TYPES['builtin_interfaces/msg/Time'](sec=FIRST_STAMP_S + index, nanosec=0)
    return TYPES['std_msgs/msg/Header'](stamp=stamp, frame_id='camera')


def raw_image(index: int, rgb: np.ndarray, encoding: str = 'rgb8', step: Optional[int] = None,
              data: Optional[np.ndarray] = None):
    """Return a sensor_msgs/Image of ``rgb`` (or of other data under another encoding)."""
    height, width = rgb.shape[:2]
    pixels = rgb.reshape(-1) if data is None else data.reshape(-1)
    return TYPES[IMAGE](header=header(index), height=height, width=width, encoding=encoding,
                        is_bigendian=0, step=width * 3 if step is None else step, data=pixels)


def write_bag(path: pathlib.Path, messages: Sequence[Tuple[str, str, object]],
              storage: StoragePlugin = StoragePlugin.SQLITE3,
              raw: Sequence[Tuple[str, str, bytes]] = (),
              definitions: Optional[Dict[str, str]] = None) -> pathlib.Path:
    """Record (topic, type, message) in order, then (topic, type, bytes) written as they are."""
    shutil.rmtree(path, ignore_errors=True)
    connections: Dict[str, object] = {}
    with Writer(path, version=8, storage_plugin=storage) as writer:
        for index, (topic, msgtype, content) in enumerate(list(messages) + list(raw)):
            if topic not in connections:
                if definitions and msgtype in definitions:
                    connections[topic] = writer.add_connection(
                        topic, msgtype, msgdef=definitions[msgtype], rihs01=UNKNOWN_DIGEST)
                else:
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=STORE)
            data = content if isinstance(content, bytes) else \
                STORE.serialize_cdr(content, msgtype)
            writer.write(connections[topic], (FIRST_STAMP_S + index) * 10**9, data)
    return path


def frames(count: int = 3) -> List[np.ndarray]:
    """Return distinct small frames of the street sample."""
    height, width = FRAME_SIZE
    base = sample_rgb(height, width)
    return [np.roll(base, 4 * index, axis=1) for index in range(count)]


def images_only_bag(path: pathlib.Path, storage: StoragePlugin = StoragePlugin.SQLITE3,
                    count: int = 3) -> pathlib.Path:
    """Write a recording of raw images and nothing else (no camera_info)."""
    return write_bag(path, [('/camera/image_raw', IMAGE, raw_image(i, rgb))
                            for i, rgb in enumerate(frames(count))], storage)


def mixed_encodings_bag(path: pathlib.Path) -> pathlib.Path:
    """Write an image topic whose frames change encoding and layout from one to the next."""
    rgb = frames(1)[0]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    height, width = FRAME_SIZE
    return write_bag(path, [
        ('/camera/image_raw', IMAGE, raw_image(0, rgb)),
        ('/camera/image_raw', IMAGE, raw_image(1, rgb[:, :, ::-1].copy(), 'bgr8')),
        ('/camera/image_raw', IMAGE, raw_image(2, rgb, '32FC1', width * 4,
                                               np.ones((height, width), np.float32).view(
                                                   np.uint8))),
        ('/camera/image_raw', IMAGE, raw_image(3, rgb, 'rgb9000')),
        ('/camera/image_raw', IMAGE, raw_image(4, grey[:, :, None], 'mono8', width, grey)),
        ('/camera/image_raw', IMAGE, raw_image(5, rgb, 'rgb8', width * 3 - 1)),
        ('/camera/image_raw', IMAGE, raw_image(6, rgb)),
    ])


def corrupt_message_bag(path: pathlib.Path) -> pathlib.Path:
    """Write frames of which one holds bytes cut short (its CDR does not fit the type)."""
    good = [('/camera/image_raw', IMAGE, raw_image(i, rgb)) for i, rgb in enumerate(frames(2))]
    cut = bytes(STORE.serialize_cdr(raw_image(2, frames(1)[0]), IMAGE))[:40]
    return write_bag(path, good, raw=[('/camera/image_raw', IMAGE, cut)])


def unknown_type_bag(path: pathlib.Path) -> pathlib.Path:
    """Write images beside topics of types no typestore knows: one definition broken, one none."""
    images = [('/camera/image_raw', IMAGE, raw_image(i, rgb)) for i, rgb in enumerate(frames(2))]
    return write_bag(path, images, raw=[('/robot/secret', 'acme_msgs/msg/Secret', b'\x00' * 12),
                                        ('/robot/blank', 'acme_msgs/msg/Blank', b'\x00' * 8)],
                     definitions={'acme_msgs/msg/Secret': 'uint8 ===',
                                  'acme_msgs/msg/Blank': ''})


def compressed_garbage_bag(path: pathlib.Path) -> pathlib.Path:
    """Write compressed frames: one good PNG, one of random bytes, one compressedDepth."""
    rgb = frames(1)[0]
    png = np.frombuffer(encoded(rgb, '.png'), np.uint8)
    return write_bag(path, [
        ('/camera/image_raw/compressed', COMPRESSED,
         TYPES[COMPRESSED](header=header(0), format='rgb8; png', data=png)),
        ('/camera/image_raw/compressed', COMPRESSED,
         TYPES[COMPRESSED](header=header(1), format='jpeg',
                           data=np.frombuffer(random.Random(3).randbytes(500), np.uint8))),
        ('/camera/image_raw/compressed', COMPRESSED,
         TYPES[COMPRESSED](header=header(2), format='16UC1; compressedDepth png', data=png)),
    ])


def no_image_bag(path: pathlib.Path) -> pathlib.Path:
    """Write a recording without any camera image topic."""
    return write_bag(path, [('/chatter', 'std_msgs/msg/String', TYPES['std_msgs/msg/String'](
        data=f'hello {i}')) for i in range(3)])


def damaged_copy(source: pathlib.Path, target: pathlib.Path, offset: int, flip: bool) -> None:
    """Copy a bag folder, its data file cut at ``offset`` or with that byte's bits flipped."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    (data_file,) = [p for p in target.iterdir() if p.suffix in ('.db3', '.mcap')]
    data = bytearray(data_file.read_bytes())
    if flip:
        data[offset] ^= 0xFF
    else:
        del data[offset:]
    data_file.write_bytes(bytes(data))


def fuzz_offsets(size: int, count: int, seed: int) -> List[int]:
    """Return offsets spread over a file: its start, header, middle, end and random places."""
    rng = random.Random(seed)
    fixed = [0, 1, 16, 100, size // 2, size - 64, size - 1]
    spread = sorted(set(fixed + [rng.randrange(size) for _ in range(3 * count)]))
    picked = fixed + [o for o in spread if o not in fixed]
    return sorted(set(o for o in picked[:count] if 0 <= o < size))


# ------------------------------------------------------------------ checks of outputs
def summary_check(path_of: Callable[[pathlib.Path], pathlib.Path],
                  predicate: Callable[[dict], bool], what: str):
    """Return a check that the summary JSON the tool wrote satisfies ``predicate``."""
    def check(work: pathlib.Path, output: str) -> Optional[str]:
        path = path_of(work)
        if not path.exists():
            return f'no summary {path.name}'
        return None if predicate(json.loads(path.read_text())) else f'summary: {what}'
    return check


def no_marker(work: pathlib.Path, output: str) -> Optional[str]:
    """Return a problem if the pickled payload ran (its marker file exists)."""
    return 'the pickled payload ran' if (work / 'payload_ran').exists() else None


# ------------------------------------------------------------------ the cases
def checkpoint_cases(work: pathlib.Path) -> List[Case]:
    """Every bad checkpoint through hydranet-infer --model (exit 2 before any image)."""
    picture = work / 'inputs' / 'room.png'
    cases = []
    for name, (make, what, fragments) in checkpoint_inputs(work).items():
        def argv(work: pathlib.Path, name: str = name, make=make) -> List[str]:
            path = work / 'checkpoints' / name
            if not path.exists() and not path.is_fifo():
                path.parent.mkdir(parents=True, exist_ok=True)
                make(path)
            write(picture, encoded(sample_rgb(48, 64), '.png'))
            return [str(picture), '--model', str(path), '--out', str(work / 'never'), *ENGINE]
        cases.append(Case('hydranet-infer', f'--model {name}', what, argv, 2, fragments,
                          check=no_marker if name == 'payload.pt' else None))
    return cases


def infer_cases(work: pathlib.Path) -> List[Case]:
    """Bad images, folders and options of hydranet-infer."""
    folder = work / 'photos'
    inputs = image_folder_inputs()
    picture = work / 'inputs' / 'room.png'
    big = work / 'inputs' / 'big.jpg'

    def folder_run(work: pathlib.Path) -> List[str]:
        for name, (make, _, _) in inputs.items():
            make(write(folder / name, b''))
        write(folder / 'good.png', encoded(sample_rgb(48, 64), '.png'))
        return [str(folder), '--out', str(work / 'photos_out'), '--outputs', 'labels,panel',
                *ENGINE]

    def picture_args(*extra: str) -> Callable[[pathlib.Path], List[str]]:
        def argv(work: pathlib.Path) -> List[str]:
            write(picture, encoded(sample_rgb(48, 64), '.png'))
            return [str(picture), '--out', str(work / 'out'), *ENGINE, *extra]
        return argv

    def big_args(*extra: str) -> Callable[[pathlib.Path], List[str]]:
        def argv(work: pathlib.Path) -> List[str]:
            if not big.exists():
                write(big, encoded(sample_rgb(600, 800), '.jpg'))
            return [str(big), '--out', str(work / 'big_out'), '--outputs', 'labels',
                    '--max-input-pixels', '100000', *ENGINE, *extra]
        return argv

    fragments = tuple(f'{name}: {fragment}' for name, (_, _, fragment) in inputs.items()
                      if name != 'tiny.png')
    return [
        Case('hydranet-infer', 'a folder of broken pictures', ', '.join(
            what for _, what, _ in inputs.values()) + ', beside one good picture',
            folder_run, 1, fragments + ('image(s) failed',), bad_inputs=len(inputs),
            check=summary_check(lambda w: w / 'photos_out' / 'summary.json',
                                lambda s: s['totals']['processed'] == 1
                                and s['totals']['failed'] == len(inputs),
                                'one image processed, every bad one listed')),
        Case('hydranet-infer', 'missing input', 'a picture that does not exist',
             lambda w: [str(w / 'nowhere.jpg'), *ENGINE], 2,
             ('nowhere.jpg: no such file or folder',)),
        Case('hydranet-infer', 'output is a file', '--out naming an existing file',
             lambda w: picture_args()(w)[:1] + ['--out', str(write(w / 'a_file', b'x'))], 2,
             ('exists and is not a folder',)),
        Case('hydranet-infer', 'empty folder', 'a folder without pictures',
             lambda w: [str((w / 'empty_folder').mkdir(exist_ok=True) or w / 'empty_folder'),
                        '--out', str(w / 'out')], 2, ('no images found',)),
        Case('hydranet-infer', 'size as W H', '--input-size 640 480 (two numbers)',
             lambda w: picture_args('--input-size', '640')(w) + ['480'], 2,
             ('expected HEIGHTxWIDTH',)),
        Case('hydranet-infer', 'size text', '--input-size big', picture_args(
            '--input-size', 'big'), 2, ('expected HEIGHTxWIDTH',)),
        Case('hydranet-infer', 'size zero', '--input-size 0x0', picture_args(
            '--input-size', '0x0'), 2, ('too small',)),
        Case('hydranet-infer', 'opacity', '--alpha 3', picture_args('--alpha', '3'), 2,
             ('[0, 1]',)),
        Case('hydranet-infer', 'outputs', '--outputs holograms', picture_args(
            '--outputs', 'holograms'), 2, ("unknown output 'holograms'",)),
        Case('hydranet-infer', 'threads', '--threads 0', picture_args('--threads', '0'), 2,
             ('positive integer',)),
        Case('hydranet-infer', 'pixel limit', '--max-input-pixels -5',
             picture_args('--max-input-pixels', '-5'), 2, ('integer >= 0',)),
        Case('hydranet-infer', 'device', '--device quantum', picture_args(
            '--device', 'quantum'), 2, ('quantum',)),
        Case('hydranet-infer', 'too large, refused', 'an 800x600 photo over --max-input-pixels '
             'with --refuse-large', big_args('--refuse-large'), 1,
             ('raise --max-input-pixels',)),
        Case('hydranet-infer', 'too large, shrunk', 'an 800x600 photo over --max-input-pixels',
             big_args(), 0, ('note:', 'processed at 273x365 px'),
             check=summary_check(lambda w: w / 'big_out' / 'summary.json',
                                 lambda s: s['images'][0]['shrunk_from'] == [600, 800],
                                 'shrunk_from recorded')),
    ]


def bag_cases(work: pathlib.Path) -> List[Case]:
    """Bad recordings and options of hydranet-bag."""
    def converted(make: Callable[[pathlib.Path], pathlib.Path], name: str,
                  *extra: str) -> Callable[[pathlib.Path], List[str]]:
        def argv(work: pathlib.Path) -> List[str]:
            source = make(work / 'bags' / name)
            output = work / 'bags' / f'{name}_out'
            shutil.rmtree(output, ignore_errors=True)
            return [str(source), str(output), '--quiet', '--summary',
                    str(work / 'bags' / f'{name}.json'), *ENGINE, *extra]
        return argv

    def summary(name: str, predicate: Callable[[dict], bool], what: str):
        return summary_check(lambda w: w / 'bags' / f'{name}.json', predicate, what)

    def metadata_only(path: pathlib.Path) -> pathlib.Path:
        images_only_bag(path)
        for data in path.glob('*.db3'):
            data.unlink()
        return path

    def broken_metadata(path: pathlib.Path) -> pathlib.Path:
        images_only_bag(path)
        (path / 'metadata.yaml').write_text('rosbag2_bagfile_information: [unclosed\n')
        return path

    def named(suffix: str, content: bytes) -> Callable[[pathlib.Path], pathlib.Path]:
        return lambda path: write(path.with_suffix(suffix), content)

    def existing_output(work: pathlib.Path) -> List[str]:
        source = images_only_bag(work / 'bags' / 'exists')
        target = work / 'bags' / 'exists_out'
        target.mkdir(parents=True, exist_ok=True)
        return [str(source), str(target), *ENGINE]

    def empty_folder(work: pathlib.Path) -> List[str]:
        (work / 'bags' / 'empty').mkdir(parents=True, exist_ok=True)
        return [str(work / 'bags' / 'empty'), *ENGINE]

    return [
        Case('hydranet-bag', 'missing bag', 'a path that does not exist',
             lambda w: [str(w / 'no_such_bag'), *ENGINE], 2, ('does not exist',)),
        Case('hydranet-bag', 'empty folder', 'an empty folder', empty_folder, 2,
             ('empty folder',)),
        Case('hydranet-bag', 'metadata only', 'metadata.yaml without its .db3',
             converted(metadata_only, 'metadata_only'), 2, ('not a readable rosbag2',)),
        Case('hydranet-bag', 'broken metadata', 'a metadata.yaml that is not YAML',
             converted(broken_metadata, 'broken_metadata'), 2, ('not a readable rosbag2',
                                                                'ros2 bag reindex')),
        Case('hydranet-bag', 'random .db3', 'random bytes named .db3',
             converted(named('.db3', random.Random(4).randbytes(5000)), 'random'), 2,
             ('not a readable rosbag2',)),
        Case('hydranet-bag', 'random .mcap', 'random bytes named .mcap',
             converted(named('.mcap', random.Random(5).randbytes(5000)), 'random'), 2,
             ('not a readable rosbag2', 'mcap recover')),
        Case('hydranet-bag', 'ROS 1 bag', 'a file named .bag',
             converted(named('.bag', b'#ROSBAG V2.0\n'), 'ros1'), 2, ('ROS 1 bag',)),
        Case('hydranet-bag', 'output exists', 'an output folder that exists', existing_output, 2,
             ('exists already',)),
        Case('hydranet-bag', 'no image topic', 'a recording without camera images',
             converted(no_image_bag, 'no_images'), 2, ('no sensor_msgs/Image',)),
        Case('hydranet-bag', 'topic not in bag', '--topic naming a topic the bag lacks',
             converted(images_only_bag, 'missing_topic', '--topic', '/nope'), 2,
             ('is not in the bag',)),
        Case('hydranet-bag', 'bad window', '--start after --end',
             converted(images_only_bag, 'window', '--start', '2', '--end', '1'), 2,
             ('--start must be >= 0 and below --end',)),
        Case('hydranet-bag', 'images only', 'images without camera_info (converts, with a note)',
             converted(images_only_bag, 'images_only'), 0, ('note:', 'camera_info is left out'),
             check=summary('images_only', lambda s: s['totals']['processed'] == 3
                           and s['camera_info_topic'] is None and s['notes'],
                           'three frames, no camera_info, a note')),
        Case('hydranet-bag', 'mixed encodings', 'rgb8, bgr8, 32FC1, an unknown encoding, mono8 '
             'and a short step on one topic', converted(mixed_encodings_bag, 'mixed'), 1,
             ("'32FC1' cannot be used", 'rgb9000', 'encoding', 'step'), bad_inputs=3,
             check=summary('mixed', lambda s: s['totals']['processed'] == 4
                           and s['totals']['skipped_by_reason'] == {'encoding': 2, 'step': 1},
                           'four frames done, skips counted by reason')),
        Case('hydranet-bag', 'corrupt message', 'a frame whose bytes are cut short',
             converted(corrupt_message_bag, 'corrupt'), 1, ('cannot be deserialised',),
             check=summary('corrupt', lambda s: s['totals']['skipped_by_reason']
                           == {'corrupt_message': 1} and s['totals']['processed'] == 2,
                           'two frames done, one corrupt message counted')),
        Case('hydranet-bag', 'unknown type', 'a topic of an unknown type with an unreadable '
             'definition', converted(unknown_type_bag, 'unknown_type'), 0,
             ('acme_msgs/msg/Secret', 'copied as recorded', '/robot/blank (acme_msgs/msg/Blank) '
              'is not copied'), bad_inputs=2,
             check=summary('unknown_type', lambda s: s['topics_not_copied'] == ['/robot/blank']
                           and s['totals']['processed'] == 2, 'the topic without a definition '
                           'listed as not copied')),
        Case('hydranet-bag', 'compressed garbage', 'compressed frames: random bytes and a '
             'compressedDepth stream', converted(compressed_garbage_bag, 'compressed'), 1,
             ('cannot decode', 'compressedDepth'), bad_inputs=2,
             check=summary('compressed', lambda s: s['totals']['processed'] == 1
                           and sum(s['totals']['skipped_by_reason'].values()) == 2,
                           'one frame done, two skips counted')),
        Case('hydranet-bag', 'too many pixels', 'frames over --max-input-pixels',
             converted(images_only_bag, 'too_large', '--max-input-pixels', '100'), 1,
             ('more than --max-input-pixels 100',),
             check=summary('too_large', lambda s: s['totals']['skipped_by_reason']
                           == {'too_large': 3}, 'three frames counted too_large')),
    ]


def bag_fuzz_cases(work: pathlib.Path, offsets_per_kind: int = BAG_FUZZ_OFFSETS) -> List[Case]:
    """Cut and bit-flip a real small recording, sqlite3 and MCAP, at many offsets.

    Each damaged copy must end with 0 (the damage hit nothing that matters), 1 (frames skipped
    and counted, or the reading stopped at the damage) or 2 (refused before any work), always
    in one line and never with a traceback.
    """
    cases = []
    for storage, name in ((StoragePlugin.SQLITE3, 'sqlite3'), (StoragePlugin.MCAP, 'mcap')):
        source = images_only_bag(work / 'fuzz' / f'source_{name}', storage, count=3)
        (data_file,) = [p for p in source.iterdir() if p.suffix in ('.db3', '.mcap')]
        size = data_file.stat().st_size
        for flip in (False, True):
            for offset in fuzz_offsets(size, offsets_per_kind, BAG_FUZZ_SEED + flip):
                label = f'{name} {"bit flip" if flip else "cut"} at {offset}'

                def argv(work: pathlib.Path, source=source, offset=offset, flip=flip,
                         label=label) -> List[str]:
                    target = work / 'fuzz' / label.replace(' ', '_')
                    damaged_copy(source, target, offset, flip)
                    output = work / 'fuzz' / (label.replace(' ', '_') + '_out')
                    shutil.rmtree(output, ignore_errors=True)
                    return [str(target), str(output), '--quiet', *ENGINE]
                cases.append(Case('hydranet-bag', f'fuzz: {label}', f'the {size}-byte '
                                  f'{name} recording {"with one byte flipped" if flip else "cut"}'
                                  f' at byte {offset}', argv, -1, check=fuzz_check))
    return cases


def fuzz_check(work: pathlib.Path, output: str) -> Optional[str]:
    """Return a problem unless every line a damaged bag gave is one of the tool's own."""
    lines = [line for line in output.splitlines() if line.strip()]
    if any(not line.startswith('hydranet-bag') for line in lines):
        return 'output lines that are not of the tool'
    return None


def eval_cases(work: pathlib.Path) -> List[Case]:
    """Bad data roots, checkpoints and options of hydranet-eval."""
    def folder_data(work: pathlib.Path, broken: bool = True) -> pathlib.Path:
        root = work / 'data'
        height, width = FRAME_SIZE
        (root / 'classes.yaml').parent.mkdir(parents=True, exist_ok=True)
        (root / 'classes.yaml').write_text(
            'classes:\n' + ''.join(f'  - {{name: c{i}, color: [{i * 40}, 0, 0]}}\n'
                                   for i in range(6)))
        for index, rgb in enumerate(frames(3)):
            write(root / 'rgb' / f'{index:03d}.png', encoded(rgb, '.png'))
            depth = np.full((height, width), 10_000, np.uint16)
            write(root / 'depth' / f'{index:03d}.png', cv2.imencode('.png', depth)[1].tobytes())
            labels = np.full((height, width), index % 6, np.uint8)
            write(root / 'labels' / f'{index:03d}.png', cv2.imencode('.png', labels)[1].tobytes())
        if broken:
            write(root / 'rgb' / '001.png', b'\x89PNG\r\n\x1a\n cut')
        return root

    def data_args(*extra: str) -> Callable[[pathlib.Path], List[str]]:
        return lambda w: ['--data', 'folder', '--data-root', str(folder_data(w)), '--split', '',
                          '--backend', 'torch', '--threads', '1', *extra]

    def no_classes(work: pathlib.Path) -> List[str]:
        root = work / 'data_no_classes'
        write(root / 'rgb' / '000.png', encoded(frames(1)[0], '.png'))
        return ['--data', 'folder', '--data-root', str(root), '--split', '']

    def bad_classes(work: pathlib.Path) -> List[str]:
        root = work / 'data_bad_classes'
        write(root / 'classes.yaml', b'classes: [ {name: sky, color: [1, 2')
        write(root / 'rgb' / '000.png', encoded(frames(1)[0], '.png'))
        return ['--data', 'folder', '--data-root', str(root), '--split', '']

    def empty_root(work: pathlib.Path) -> List[str]:
        (work / 'empty_nyud').mkdir(exist_ok=True)
        return ['--data', 'nyud', '--data-root', str(work / 'empty_nyud'), '--split', '']

    random_model = lambda w: str(write(w / 'inputs' / 'random_eval.pt',  # noqa: E731
                                       random.Random(6).randbytes(2048)))
    return [
        Case('hydranet-eval', 'unreadable frame', 'a folder dataset with one picture cut short',
             data_args('--json', str(work / 'eval.json')), 1,
             ('skipped frame 1', 'cannot read picture', 'left out of the metrics'),
             check=summary_check(lambda w: w / 'eval.json',
                                 lambda s: s['frames'] == 2 and len(s['skipped']) == 1,
                                 'two frames scored, one skipped')),
        Case('hydranet-eval', 'missing root', 'a data root that does not exist',
             lambda w: ['--data', 'nyud', '--data-root', str(w / 'no_data')], 2,
             ('does not exist', '--data-root')),
        Case('hydranet-eval', 'empty root', 'a data root without pictures', empty_root, 2,
             ('no pictures found',)),
        Case('hydranet-eval', 'no classes.yaml', 'a folder dataset without classes.yaml',
             no_classes, 2, ('classes.yaml', 'is missing')),
        Case('hydranet-eval', 'broken classes.yaml', 'a classes.yaml that is not YAML',
             bad_classes, 2, ('--data-root',)),
        Case('hydranet-eval', 'no root', '--data nyud without --data-root',
             lambda w: ['--data', 'nyud'], 2, ('needs --data-root',)),
        Case('hydranet-eval', 'random model', 'a checkpoint of random bytes',
             lambda w: ['--model', random_model(w)], 2, ('not a PyTorch checkpoint',)),
        Case('hydranet-eval', 'size too small', '--input-size 4x4',
             lambda w: ['--input-size', '4x4'], 2, ('too small',)),
        Case('hydranet-eval', 'size three numbers', '--input-size 1 2 3',
             lambda w: ['--input-size', '1', '2', '3'], 2, ('expected HEIGHTxWIDTH',)),
        Case('hydranet-eval', 'preset', '--preset cityscapes', lambda w: ['--preset',
                                                                          'cityscapes'], 2,
             ('invalid choice',)),
    ]


def train_cases(work: pathlib.Path) -> List[Case]:
    """Bad data, checkpoints and options of hydranet-train."""
    random_init = lambda w: str(write(w / 'inputs' / 'random_init.pt',  # noqa: E731
                                      random.Random(7).randbytes(2048)))
    return [
        Case('hydranet-train', 'missing root', 'a data root that does not exist',
             lambda w: ['--data', 'nyud', '--data-root', str(w / 'no_data'), '--out',
                        str(w / 'run')], 2, ('does not exist',)),
        Case('hydranet-train', 'random init', '--init of random bytes',
             lambda w: ['--data', 'scenes', '--limit-train', '2', '--val-split', '',
                        '--init', random_init(w), '--out', str(w / 'run')], 2,
             ('not a PyTorch checkpoint',)),
        Case('hydranet-train', 'resume without a run', '--resume in an empty output folder',
             lambda w: ['--data', 'scenes', '--limit-train', '2', '--val-split', '', '--resume',
                        '--out', str(w / 'fresh_run')], 2, ('does not exist',)),
        Case('hydranet-train', 'generate without root', '--generate without --data-root',
             lambda w: ['--generate', '10'], 2, ('--generate needs',)),
        Case('hydranet-train', 'crop text', '--crop square', lambda w: ['--crop', 'square'], 2,
             ('expected HEIGHTxWIDTH',)),
        Case('hydranet-train', 'epochs', '--epochs 0', lambda w: ['--epochs', '0'], 2,
             ('positive integer',)),
    ]


def bench_cases(work: pathlib.Path) -> List[Case]:
    """Bad models, pictures and sizes of hydranet-bench."""
    return [
        Case('hydranet-bench', 'random model', 'a checkpoint of random bytes',
             lambda w: ['--model', str(write(w / 'inputs' / 'random_bench.pt',
                                             random.Random(8).randbytes(2048))), '--quick'], 2,
             ('not a PyTorch checkpoint',)),
        Case('hydranet-bench', 'bad picture', 'an --input that is not a picture',
             lambda w: ['--input', str(write(w / 'inputs' / 'letter.png', b'hello')), '--quick',
                        '--backends', 'torch'], 2, ('not a readable picture',)),
        Case('hydranet-bench', 'size', '--sizes 3x3', lambda w: ['--sizes', '3x3'], 2,
             ('too small',)),
    ]


def all_cases(work: pathlib.Path, fuzz_offsets_per_kind: int = BAG_FUZZ_OFFSETS) -> List[Case]:
    """Return the whole corpus."""
    return (checkpoint_cases(work) + infer_cases(work) + bag_cases(work) + eval_cases(work)
            + train_cases(work) + bench_cases(work)
            + bag_fuzz_cases(work, fuzz_offsets_per_kind))


# ------------------------------------------------------------------ running
@contextlib.contextmanager
def captured_logging(stream: io.StringIO, prog: str):
    """Send the root logger (the tools log through it) to ``stream`` while a case runs.

    Lines are formatted as the tool formats them when it runs alone (``<tool>: message``).
    """
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(f'{prog}: %(message)s'))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def run_tool(tool: str, argv: Sequence[str]) -> Tuple[Optional[int], str, Optional[BaseException]]:
    """Run a tool's main in this process; return (exit code, output, escaped exception)."""
    stream = io.StringIO()
    escaped: Optional[BaseException] = None
    code: Optional[int] = None
    threads = torch.get_num_threads()
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), \
            captured_logging(stream, tool):
        try:
            code = TOOLS[tool](list(argv))
        except SystemExit as exit_:  # argparse on bad usage
            code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException as error:  # noqa: B902 - an escaped exception is what we look for
            escaped = error
    torch.set_num_threads(threads)
    return code, stream.getvalue(), escaped


def problems_of(case: Case, code: Optional[int], output: str,
                escaped: Optional[BaseException], work: pathlib.Path) -> List[str]:
    """Return every rule the case broke (empty when it held)."""
    problems = []
    if escaped is not None:
        problems.append(f'exception escaped main: {type(escaped).__name__}: {escaped}')
    if 'Traceback' in output:
        problems.append('traceback in the output')
    advice = unsafe_advice_in(output) or (UNSAFE.search(output) and UNSAFE.search(output)[0])
    if advice:
        problems.append(f'unsafe advice: {advice}')
    if case.code >= 0 and code != case.code:
        problems.append(f'exit code {code}, expected {case.code}')
    if case.code < 0 and code not in (0, 1, 2):
        problems.append(f'exit code {code}, expected 0, 1 or 2')
    if code == 2 and 'error' not in output and case.tool != CHECKPOINT:
        problems.append('exit code 2 without an error line')
    for fragment in case.fragments:
        if fragment not in output:
            problems.append(f'missing {fragment!r}')
    if case.check is not None:
        failed = case.check(work, output)
        if failed:
            problems.append(failed)
    return problems


def run_case(case: Case, work: pathlib.Path) -> Outcome:
    """Make the case's input, run the tool, and judge the outcome."""
    started = time.perf_counter()
    argv = case.argv(work)
    code, output, escaped = run_tool(case.tool, argv)
    return Outcome(case, code, output, time.perf_counter() - started,
                   problems_of(case, code, output, escaped, work))


def checkpoint_outcomes(work: pathlib.Path) -> List[Outcome]:
    """Load every bad checkpoint with load_hydranet: CheckpointError, safe text, no payload run."""
    outcomes = []
    for name, (make, what, fragments) in checkpoint_inputs(work).items():
        path = work / 'checkpoints_direct' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and not path.is_fifo():
            make(path)
        case = Case(CHECKPOINT, name, what, lambda w: [], 2, fragments)
        started = time.perf_counter()
        problems = []
        try:
            load_hydranet(path)
            text, code = '', 0
            problems.append('loaded without an error')
        except CheckpointError as error:
            text, code = str(error), 2
            if str(path) not in text:
                problems.append('the message does not name the file')
            if '\n' in text:
                problems.append('the message is more than one line')
        except Exception as error:  # noqa: B902 - anything else is a broken door
            text, code = f'{type(error).__name__}: {error}', None
            problems.append(f'raised {type(error).__name__}, not CheckpointError')
        problems += problems_of(case, code, text, None, work)
        if name == 'payload.pt' and no_marker(work, text):
            problems.append('the pickled payload ran')
        outcomes.append(Outcome(case, code, text, time.perf_counter() - started, problems))
    return outcomes


def run_corpus(work: pathlib.Path, fuzz_offsets_per_kind: int = BAG_FUZZ_OFFSETS
               ) -> List[Outcome]:
    """Run every case in ``work``; return the outcomes."""
    outcomes = checkpoint_outcomes(work)
    for case in all_cases(work, fuzz_offsets_per_kind):
        outcomes.append(run_case(case, work))
    return outcomes


def figures(outcomes: Sequence[Outcome], seconds: float,
            work: Optional[pathlib.Path] = None) -> Dict:
    """Return what the corpus found, per tool and in all, for docs/reliability.md."""
    tools: Dict[str, Dict] = collections.OrderedDict()
    for outcome in outcomes:
        entry = tools.setdefault(outcome.case.tool, {
            'cases': 0, 'bad_inputs': 0, 'exit_codes': collections.Counter(), 'held': 0,
            'tracebacks': 0, 'unsafe_advice': 0})
        entry['cases'] += 1
        entry['bad_inputs'] += outcome.case.bad_inputs
        entry['exit_codes'][str(outcome.code)] += 1
        entry['held'] += not outcome.problems
        entry['tracebacks'] += any('traceback' in p or 'escaped' in p for p in outcome.problems)
        entry['unsafe_advice'] += any(p.startswith('unsafe advice') for p in outcome.problems)
    for entry in tools.values():
        entry['exit_codes'] = dict(sorted(entry['exit_codes'].items()))
    return {
        'cases': len(outcomes),
        'bad_inputs': sum(o.case.bad_inputs for o in outcomes),
        'held': sum(not o.problems for o in outcomes),
        'tracebacks': sum(t['tracebacks'] for t in tools.values()),
        'unsafe_advice': sum(t['unsafe_advice'] for t in tools.values()),
        'bag_fuzz_cases': sum(o.case.name.startswith('fuzz:') for o in outcomes),
        'bag_fuzz_exit_codes': dict(sorted(collections.Counter(
            str(o.code) for o in outcomes if o.case.name.startswith('fuzz:')).items())),
        'seconds': round(seconds, 1),
        'tools': tools,
        'outcomes': [{'tool': o.case.tool, 'case': o.case.name, 'what': o.case.what,
                      'expected': o.case.code, 'exit_code': o.code,
                      'said': first_line(o.output, work), 'problems': o.problems}
                     for o in outcomes],
    }


def first_line(output: str, work: Optional[pathlib.Path] = None) -> str:
    """Return the first error, skip or note line of an output (else its first), for the report.

    Paths inside ``work`` are written relative to it.
    """
    if work is not None:
        output = output.replace(f'{work}/', '')
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if 'error:' in line or 'skipped' in line]
    notes = [line for line in lines if 'note:' in line]
    return (errors or notes or lines or [''])[0]


def installed(tool: str, module: str) -> List[str]:
    """Return the console script of a tool, or its module when it is not installed."""
    script = pathlib.Path(sys.executable).with_name(tool)
    return [str(script)] if script.exists() else [sys.executable, '-m', module]


def peak_rss_run(command: Sequence[str]) -> Tuple[int, float, float]:
    """Run a command; return its exit code, its peak resident memory (MB) and its seconds."""
    started = time.perf_counter()
    process = subprocess.Popen(list(command), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024.0, time.perf_counter() - started


def big_photo(work: pathlib.Path) -> Dict:
    """Measure hydranet-infer with default options on a generated 48 MP photo (6000x8000)."""
    height, width = BIG_PHOTO_SIZE
    photo = work / 'big' / f'photo_{width}x{height}.jpg'
    rng = np.random.default_rng(0)
    rgb = cv2.resize(sample_rgb(375, 1242), (width, height), interpolation=cv2.INTER_CUBIC)
    noisy = cv2.add(rgb, rng.integers(0, 12, rgb.shape, dtype=np.uint8))
    write(photo, encoded(noisy, '.jpg'))
    del rgb, noisy
    command = installed('hydranet-infer', 'hydranet_ros.tools.infer')
    out = work / 'big' / 'out'
    code, peak_mb, seconds = peak_rss_run(command + [str(photo), '--out', str(out)])
    summary = json.loads((out / 'summary.json').read_text())
    image = summary['images'][0]
    _, unlimited_mb, _ = peak_rss_run(command + [str(photo), '--out', str(work / 'big' / 'out0'),
                                                 '--max-input-pixels', '0'])
    return {'command': 'hydranet-infer photo.jpg --out DIR', 'size': f'{height}x{width}',
            'exit_code': code, 'peak_rss_mb': peak_mb, 'seconds': seconds,
            'processed': f'{image["height"]}x{image["width"]}',
            'max_input_pixels': DEFAULT_MAX_INPUT_PIXELS, 'unlimited_peak_rss_mb': unlimited_mb}


def source_revision() -> str:
    """Return the checkout's commit (with -dirty for local changes), or ''."""
    try:
        return subprocess.run(['git', 'describe', '--always', '--dirty'], capture_output=True,
                              text=True, cwd=pathlib.Path(__file__).parent,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the corpus in a temporary folder and print (or write) its figures as JSON."""
    import tempfile
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--json-out', default='', help='write the figures to this file')
    parser.add_argument('--keep', default='', help='work in this folder and keep it')
    parser.add_argument('--big-photo', action='store_true',
                        help='also measure the peak memory of hydranet-infer on a 6000x8000 '
                             'photo, with the default pixel limit and without it (a minute)')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='door_corpus_') as temporary:
        work = pathlib.Path(args.keep or temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        outcomes = run_corpus(work)
        result = figures(outcomes, time.perf_counter() - started, work)
        result['source_revision'] = source_revision()
        if args.big_photo:
            result['big_photo'] = big_photo(work)
    text = json.dumps(result, indent=2)
    if args.json_out:
        pathlib.Path(args.json_out).write_text(text + '\n')
    for outcome in outcomes:
        if outcome.problems:
            print(f'{outcome.case.tool} {outcome.case.name}: {outcome.problems}',
                  file=sys.stderr)
    print(json.dumps({k: v for k, v in result.items() if k not in ('outcomes', 'tools')},
                     indent=2))
    return 0 if result['held'] == result['cases'] else 1


if __name__ == '__main__':
    sys.exit(main())
