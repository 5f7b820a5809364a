"""The panel's text stays inside its boxes and legible at every tile width the tools produce."""
import numpy as np
import pytest

from hydranet_ros.model import get_preset
from hydranet_ros.tools import panel
from hydranet_ros.tools.panel import compose_panel, fitting_caption, MIN_FONT_SCALE, \
    MIN_TILE_WIDTH_PX, text_size

TILE_WIDTHS = (8, 17, 48, 64, 100, 128, 200, 239, 240, 320, 480, 640, 1242, 4000)
DEPTH_CAPTIONS = ['depth 0-80 m (near red)', 'depth 0-80 m', 'depth']
GAP = panel.GAP_PX


def tiles(height: int, width: int, seed: int = 0):
    """Return three distinct noisy tiles of one size: input, overlay and depth."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(3)]


def legend_entries(count: int):
    """Return the legend of a 40-class model: long NYUDv2 names, shares summing to one."""
    config = get_preset('nyud40')
    return [(config.class_names[i], tuple(config.class_colors[i]), 1.0 / count)
            for i in range(count)]


@pytest.mark.parametrize('width', TILE_WIDTHS)
def test_captions_fit_their_tiles_at_a_legible_size(width):
    tile_width = width * max(1, -(-MIN_TILE_WIDTH_PX // width))
    scale = panel.font_scale(tile_width)
    for variants in (['input'], ['segmentation', 'labels'], DEPTH_CAPTIONS):
        text, fitted = fitting_caption(variants, tile_width, scale)
        assert fitted >= MIN_FONT_SCALE
        assert text_size(text, fitted)[0] + 2 * panel._margin(fitted) <= tile_width, \
            (width, text)
    assert fitting_caption(DEPTH_CAPTIONS, tile_width, scale)[0] == DEPTH_CAPTIONS[0], \
        'every tile is wide enough for the whole depth caption'


@pytest.mark.parametrize('width', TILE_WIDTHS[:-1])
def test_text_touches_only_its_caption_box_and_the_legend(width):
    height = max(8, width * 3 // 10)
    inputs = tiles(height, width)
    result = compose_panel(*inputs, legend_entries(6), (0.0, 80.0))
    factor = max(1, -(-MIN_TILE_WIDTH_PX // width))
    tile_height, tile_width = height * factor, width * factor
    assert tile_width >= MIN_TILE_WIDTH_PX
    assert result.shape[1] == 3 * tile_width + 2 * GAP
    for index, (tile, variants) in enumerate(zip(inputs, (['input'], ['segmentation', 'labels'],
                                                          DEPTH_CAPTIONS))):
        left = index * (tile_width + GAP)
        drawn = result[:tile_height, left:left + tile_width]
        enlarged = np.repeat(np.repeat(tile, factor, axis=0), factor, axis=1)
        text, scale = fitting_caption(variants, tile_width, panel.font_scale(tile_width))
        text_width, text_height, depth = text_size(text, scale)
        margin = panel._margin(scale)
        changed = np.any(drawn != enlarged, axis=2)
        rows, cols = np.nonzero(changed)
        assert rows.max() < text_height + depth + 2 * margin, (width, index)
        assert cols.max() < text_width + 2 * margin, (width, index)
        if index:
            assert np.all(result[:tile_height, left - GAP:left] == 255), 'gap left untouched'


def test_legend_wraps_instead_of_dropping_classes():
    narrow = compose_panel(*tiles(60, 240), legend_entries(12), (0.0, 10.0))
    wide = compose_panel(*tiles(60, 1600), legend_entries(12), (0.0, 10.0))
    narrow_legend = narrow.shape[0] - 60
    wide_legend = wide.shape[0] - 60
    _, text_height, depth = text_size('Ag', panel.font_scale(240))
    row_height = text_height + depth + 2 * panel._margin(panel.font_scale(240))
    assert narrow_legend >= 2 * row_height, 'twelve long names need more than one row'
    assert wide_legend < narrow_legend * (wide.shape[1] / narrow.shape[1])
    swatches = [tuple(int(c) for c in color) for _, color, _ in legend_entries(12)]
    legend = narrow[60:]
    for color in swatches:
        assert np.any(np.all(legend == np.array(color, np.uint8), axis=2)), color
