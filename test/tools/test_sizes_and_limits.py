"""Sizes written HEIGHTxWIDTH (old forms read with a note), and pictures kept within a limit."""
import argparse

import cv2
import numpy as np
import pytest

from dev.reliability import soak
from hydranet_ros.engine.picture_header import picture_size
from hydranet_ros.tools import evaluate, train
from hydranet_ros.tools.image_io import DEFAULT_MAX_INPUT_PIXELS, fitted_size, ImageTooLarge, \
    PixelLimit, read_image
from hydranet_ros.tools.sizes import DeprecatedWidthHeight, parse_size, SizeOrTwoNumbers

SAMPLE_SIZE = (60, 80)  # height, width


def picture(height: int, width: int) -> np.ndarray:
    """Return a smooth BGR picture with distinct rows and columns."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows * 255 // max(1, height - 1), cols * 255 // max(1, width - 1),
                     (rows + cols) % 256], axis=2).astype(np.uint8)


def test_sizes_are_height_by_width():
    assert parse_size('480x640') == (480, 640)
    assert parse_size(' 96 X 320 ') == (96, 320)
    for bad in ('640', '480x', 'x640', '480*640', '-1x5', '480x640x3'):
        with pytest.raises(argparse.ArgumentTypeError, match='HEIGHTxWIDTH'):
            parse_size(bad)


def test_two_numbers_are_read_with_a_note(capsys):
    args = evaluate.build_parser().parse_args(['--input-size', '96', '320'])
    assert args.input_size == (96, 320)
    assert 'write --input-size 96x320 (HEIGHTxWIDTH)' in capsys.readouterr().err
    assert evaluate.build_parser().parse_args(['--input-size', '96x320']).input_size == (96, 320)
    assert capsys.readouterr().err == ''
    assert train.build_parser().parse_args(['--crop', '200', '300']).crop == (200, 300)
    assert 'write --crop 200x300' in capsys.readouterr().err


def test_width_by_height_of_the_demo_and_the_soak_is_read_with_a_note(capsys):
    assert soak.parse_args(['--inference-size', '320x240']).input_size == (240, 320)
    assert 'write --input-size 240x320' in capsys.readouterr().err
    assert soak.parse_args(['--input-size', '240x320']).input_size == (240, 320)
    parser = argparse.ArgumentParser(prog='tool')
    parser.add_argument('--inference-size', dest='input_size', action=DeprecatedWidthHeight)
    parser.add_argument('--crop', action=SizeOrTwoNumbers)
    assert parser.parse_args(['--inference-size', '640x480']).input_size == (480, 640)
    with pytest.raises(SystemExit):
        parser.parse_args(['--crop', '1', '2', '3'])
    assert 'expected HEIGHTxWIDTH' in capsys.readouterr().err


@pytest.mark.parametrize('height,width,limit', [(6000, 8000, DEFAULT_MAX_INPUT_PIXELS),
                                                (600, 800, 100_000), (70, 100_000, 500_000),
                                                (100, 100, 10_000)])
def test_fitted_size_keeps_the_aspect_within_the_limit(height, width, limit):
    fitted = fitted_size(height, width, limit)
    assert fitted[0] * fitted[1] <= limit
    assert fitted[0] >= 1 and fitted[1] >= 1
    if height * width > limit:
        assert abs(fitted[1] / fitted[0] - width / height) < 0.5 * width / height
        assert (fitted[0] + 1) * (fitted[1] + 1) > limit, 'as large as the limit allows'


@pytest.mark.parametrize('extension', ['.jpg', '.png', '.bmp', '.tif', '.webp', '.ppm'])
def test_large_pictures_are_shrunk_or_refused(tmp_path, extension):
    height, width = 300, 400
    path = tmp_path / f'big{extension}'
    assert cv2.imwrite(str(path), picture(height, width))
    assert picture_size(path.read_bytes())[1:3] == (width, height)
    whole = read_image(str(path), PixelLimit(0))
    assert whole.rgb.shape == (height, width, 3) and whole.original_size is None
    shrunk = read_image(str(path), PixelLimit(10_000))
    assert shrunk.original_size == (height, width)
    assert shrunk.rgb.shape[:2] == fitted_size(height, width, 10_000)
    reference = cv2.resize(cv2.cvtColor(whole.rgb, cv2.COLOR_RGB2BGR),
                           shrunk.rgb.shape[1::-1], interpolation=cv2.INTER_AREA)
    difference = np.abs(cv2.cvtColor(shrunk.rgb, cv2.COLOR_RGB2BGR).astype(int) - reference)
    assert difference.mean() < 8, 'the shrunk picture is the picture'
    with pytest.raises(ImageTooLarge, match='raise --max-input-pixels'):
        read_image(str(path), PixelLimit(10_000, refuse=True))
    small = read_image(str(path), PixelLimit(height * width))
    assert small.original_size is None and small.rgb.shape[:2] == (height, width)


def test_a_small_file_claiming_a_huge_picture_is_refused_before_decoding(tmp_path):
    ok, png = cv2.imencode('.png', picture(*SAMPLE_SIZE))
    data = bytearray(png.tobytes())
    data[16:24] = (60_000).to_bytes(4, 'big') + (50_000).to_bytes(4, 'big')
    path = tmp_path / 'bomb.png'
    path.write_bytes(bytes(data))
    for limit in (None, PixelLimit(), PixelLimit(0)):
        with pytest.raises(ImageTooLarge, match='50000x60000 px .* too large to decode'):
            read_image(str(path), limit)
