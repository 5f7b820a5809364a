"""A side-by-side picture for people: input | segmentation overlay | depth, with a class legend.

Text stays readable whatever the picture's size: captions sit on a dark box of their own (over
any image content), are shortened or shrunk to fit their tile, and never go below a legible
font size; tiles narrower than ``MIN_TILE_WIDTH_PX`` are enlarged (each pixel repeated) so that
their caption fits. The legend wraps onto more rows instead of dropping classes. Each piece of
text is drawn once, at one thickness: OpenCV's glyphs change width with the thickness, so an
outline drawn thicker than its text does not line up with it.
"""
import math
from typing import List, Sequence, Tuple

import numpy as np

import cv2

GAP_PX = 4
GAP_RGB = (255, 255, 255)
TEXT_RGB = (255, 255, 255)
CAPTION_BOX_RGB = (0, 0, 0)
CAPTION_BOX_OPACITY = 0.6
LEGEND_BACKGROUND_RGB = (32, 32, 32)
FONT = cv2.FONT_HERSHEY_SIMPLEX
REFERENCE_WIDTH_PX = 640.0
BASE_FONT_SCALE = 0.6
MIN_FONT_SCALE = 0.4
"""Below this the Hershey glyphs (cap height about 11 px at 0.4) are no longer legible."""
MIN_TILE_WIDTH_PX = 240
"""Narrower tiles are enlarged to at least this width, so that their captions fit."""
THICKNESS_PER_SCALE = 1.6
MARGIN_PER_SCALE = 10.0
SWATCH_GAP_PER_SCALE = 8.0
ENTRY_GAP_PER_SCALE = 24.0
FONT_SCALE_STEP = 0.05

LegendEntry = Tuple[str, Tuple[int, int, int], float]


def font_scale(tile_width_px: int) -> float:
    """Return the font scale for a tile of this width (never below the legible minimum)."""
    return max(MIN_FONT_SCALE, BASE_FONT_SCALE * tile_width_px / REFERENCE_WIDTH_PX)


def thickness(scale: float) -> int:
    """Return the stroke width of text at ``scale``."""
    return max(1, int(round(scale * THICKNESS_PER_SCALE)))


def text_size(text: str, scale: float) -> Tuple[int, int, int]:
    """Return (width, height above the baseline, depth below it) of ``text`` as drawn here."""
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, thickness(scale))
    return width, height, baseline


def _margin(scale: float) -> int:
    return max(3, int(round(MARGIN_PER_SCALE * scale)))


def _fits(text: str, width_px: int, scale: float) -> bool:
    return text_size(text, scale)[0] + 2 * _margin(scale) <= width_px


def fitting_caption(variants: Sequence[str], width_px: int, scale: float) -> Tuple[str, float]:
    """Return the longest variant that fits ``width_px`` and its scale (shrunk if need be).

    The scale never goes below ``MIN_FONT_SCALE``; the shortest variant is returned if none
    fits even there (the tiles are made wide enough for that not to happen).
    """
    for variant in variants:
        fitted = scale
        while fitted > MIN_FONT_SCALE and not _fits(variant, width_px, fitted):
            fitted = max(MIN_FONT_SCALE, fitted - FONT_SCALE_STEP)
        if _fits(variant, width_px, fitted):
            return variant, fitted
    return variants[-1], MIN_FONT_SCALE


def _caption(tile: np.ndarray, variants: Sequence[str], scale: float) -> np.ndarray:
    """Return a copy of ``tile`` with its caption on a dark box in the top-left corner."""
    tile = tile.copy()
    text, scale = fitting_caption(variants, tile.shape[1], scale)
    width, height, depth = text_size(text, scale)
    margin = _margin(scale)
    box_right = min(tile.shape[1], width + 2 * margin)
    box_bottom = min(tile.shape[0], height + depth + 2 * margin)
    region = tile[:box_bottom, :box_right]
    box = np.empty_like(region)
    box[:] = CAPTION_BOX_RGB
    cv2.addWeighted(box, CAPTION_BOX_OPACITY, region, 1.0 - CAPTION_BOX_OPACITY, 0.0,
                    dst=region)
    cv2.putText(tile, text, (margin, margin + height), FONT, scale, TEXT_RGB, thickness(scale),
                cv2.LINE_AA)
    return tile


def _legend(width: int, entries: Sequence[LegendEntry], scale: float) -> np.ndarray:
    """Return a strip with a colour swatch, name and area share per class, wrapped in rows."""
    _, text_height, depth = text_size('Ag', scale)
    margin = _margin(scale)
    row_height = text_height + depth + 2 * margin
    swatch = text_height + depth
    gap = int(round(ENTRY_GAP_PER_SCALE * scale))
    swatch_gap = max(4, int(round(SWATCH_GAP_PER_SCALE * scale)))
    placed: List[Tuple[int, int, str, Tuple[int, int, int]]] = []
    x, row = margin, 0
    for name, color, fraction in entries:
        text = f'{name} {fraction * 100:.0f}%'
        entry_width = swatch + swatch_gap + text_size(text, scale)[0]
        if x > margin and x + entry_width > width - margin:
            x, row = margin, row + 1
        placed.append((x, row, text, tuple(int(c) for c in color)))
        x += entry_width + gap
    rows = row + 1 if placed else 1
    strip = np.full((rows * row_height, width, 3), LEGEND_BACKGROUND_RGB, np.uint8)
    for x, row, text, color in placed:
        top = row * row_height + margin
        cv2.rectangle(strip, (x, top), (x + swatch, top + swatch), color, -1)
        cv2.putText(strip, text, (x + swatch + swatch_gap, top + text_height), FONT, scale,
                    TEXT_RGB, thickness(scale), cv2.LINE_AA)
    return strip


def _enlarged(tile: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return tile
    return cv2.resize(tile, (tile.shape[1] * factor, tile.shape[0] * factor),
                      interpolation=cv2.INTER_NEAREST)


def compose_panel(image_rgb: np.ndarray, overlay_rgb: np.ndarray, depth_rgb: np.ndarray,
                  legend: Sequence[LegendEntry] = (),
                  depth_range_m: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Return input | overlay | depth side by side, captioned, with a legend strip below.

    Tiles narrower than ``MIN_TILE_WIDTH_PX`` are enlarged by a whole factor (nearest pixel).
    """
    factor = max(1, math.ceil(MIN_TILE_WIDTH_PX / max(1, image_rgb.shape[1])))
    tiles = [_enlarged(tile, factor) for tile in (image_rgb, overlay_rgb, depth_rgb)]
    height, tile_width = tiles[0].shape[:2]
    scale = font_scale(tile_width)
    depth_captions = ['depth']
    if depth_range_m[1] > depth_range_m[0]:
        low, high = depth_range_m
        depth_captions = [f'depth {low:g}-{high:g} m (near red)', f'depth {low:g}-{high:g} m',
                          'depth']
    gap = np.full((height, GAP_PX, 3), GAP_RGB, np.uint8)
    row = np.hstack([_caption(tiles[0], ['input'], scale), gap,
                     _caption(tiles[1], ['segmentation', 'labels'], scale), gap,
                     _caption(tiles[2], depth_captions, scale)])
    if not legend:
        return row
    return np.vstack([row, _legend(row.shape[1], legend, scale)])
