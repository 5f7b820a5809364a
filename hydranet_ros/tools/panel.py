"""A side-by-side picture for people: input | segmentation overlay | depth, with a class legend."""
from typing import Sequence, Tuple

import numpy as np

import cv2

GAP_PX = 4
GAP_RGB = (255, 255, 255)
TEXT_RGB = (255, 255, 255)
OUTLINE_RGB = (0, 0, 0)
LEGEND_BACKGROUND_RGB = (32, 32, 32)
FONT = cv2.FONT_HERSHEY_SIMPLEX
REFERENCE_WIDTH_PX = 640.0
BASE_FONT_SCALE = 0.6
MIN_FONT_SCALE = 0.3

LegendEntry = Tuple[str, Tuple[int, int, int], float]


def _font_scale(width_px: int) -> float:
    return max(MIN_FONT_SCALE, BASE_FONT_SCALE * width_px / REFERENCE_WIDTH_PX)


def _put_text(image: np.ndarray, text: str, origin: Tuple[int, int], scale: float) -> None:
    thickness = max(1, int(round(scale * 2)))
    cv2.putText(image, text, origin, FONT, scale, OUTLINE_RGB, thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, scale, TEXT_RGB, thickness, cv2.LINE_AA)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    scale = _font_scale(tile.shape[1])
    height = cv2.getTextSize(text, FONT, scale, 1)[0][1]
    _put_text(tile, text, (int(6 * scale) + 2, height + int(8 * scale) + 2), scale)
    return tile


def _legend(width: int, entries: Sequence[LegendEntry], scale: float) -> np.ndarray:
    """Return a strip with a colour swatch, name and area share per class, left to right."""
    line_height = int(cv2.getTextSize('Ag', FONT, scale, 1)[0][1] * 2.2) + 4
    strip = np.full((line_height, width, 3), LEGEND_BACKGROUND_RGB, np.uint8)
    x = 6
    swatch = line_height - 8
    for name, color, fraction in entries:
        text = f'{name} {fraction * 100:.0f}%'
        text_width = cv2.getTextSize(text, FONT, scale, 1)[0][0]
        if x + swatch + 4 + text_width > width:
            break
        cv2.rectangle(strip, (x, 4), (x + swatch, 4 + swatch), tuple(int(c) for c in color), -1)
        _put_text(strip, text, (x + swatch + 4, line_height - 8), scale)
        x += swatch + 4 + text_width + 16
    return strip


def compose_panel(image_rgb: np.ndarray, overlay_rgb: np.ndarray, depth_rgb: np.ndarray,
                  legend: Sequence[LegendEntry] = (),
                  depth_range_m: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Return input | overlay | depth side by side, captioned, with a legend strip below."""
    height = image_rgb.shape[0]
    gap = np.full((height, GAP_PX, 3), GAP_RGB, np.uint8)
    depth_caption = 'depth'
    if depth_range_m[1] > depth_range_m[0]:
        depth_caption = f'depth {depth_range_m[0]:g}-{depth_range_m[1]:g} m (near red)'
    row = np.hstack([_caption(image_rgb, 'input'), gap, _caption(overlay_rgb, 'segmentation'),
                     gap, _caption(depth_rgb, depth_caption)])
    if not legend:
        return row
    return np.vstack([row, _legend(row.shape[1], legend, _font_scale(image_rgb.shape[1]))])
