"""Procedural street scenes with exact metric depth and labels, rendered through a pinhole camera.

The camera frame is the optical frame of REP 103: x right, y down, z forward; the camera sits at
the origin, ``camera_height_m`` above a flat road (the plane y = camera_height_m). A scene is a
list of axis-aligned boxes and spheres (buildings, sidewalks, lawns, hedges, tree crowns and
trunks, cars), each with a class of the KITTI-6 set and a material. Every pixel casts one ray
through its centre; the nearest hit gives the label and the depth (z of the hit point) exactly.
The picture is shaded with a sun, cast shadows, sky light, haze, world-space textures, exposure,
white balance and sensor noise, so that colour alone does not give away the class.

``StreetSceneGenerator(seed, height, width).render(index)`` is deterministic in (seed, index).
"""
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import classes
from .raycast import box_blocks, intersect_box, intersect_horizontal_plane, intersect_sphere

Color = Tuple[float, ...]
"""An (r, g, b) colour, each in [0, 1]."""
Range = Sequence[float]
"""A (min, max) interval in metres along one axis."""
Rect = Tuple[int, int, int, int]
"""A pixel rectangle (first row, end row, first column, end column)."""

CAMERA_HEIGHT_M = 1.65
"""Camera height above the road, as on the KITTI recording car."""

FOCAL_LENGTH_PER_WIDTH = 0.58
"""Focal length in pixels per image width (KITTI: 721 px at 1242 px)."""

PRINCIPAL_ROW_FRACTION = 0.47
"""Principal point row as a fraction of the image height (KITTI: 173 of 375)."""

STREET_LENGTH_M = 400.0
"""How far an open street extends in front of the camera."""

TEXTURE_SIZE = 256
"""Side of the square, tileable noise textures (power of two)."""

ROAD, SIDEWALK, FACADE, LAWN, FOLIAGE, TRUNK, CAR_BODY, CAR_CABIN, WHEEL = range(9)
"""Material kinds; each has its own texture and reflectance."""


@dataclass(frozen=True)
class Scene:
    """One rendered frame and its exact ground truth.

    Attributes:
        image_rgb: (H, W, 3) uint8 picture.
        depth_m: (H, W) float32 depth along the optical axis in metres; +inf where the ray hits
            nothing (sky), as REP 118 writes "too far".
        labels: (H, W) uint8 class ids of ``classes.KITTI6_CLASS_NAMES``.
        K: (3, 3) float64 camera matrix.
    """

    image_rgb: np.ndarray
    depth_m: np.ndarray
    labels: np.ndarray
    K: np.ndarray


@dataclass
class Primitive:
    """An axis-aligned box (``size`` has 3 entries) or a sphere (``size`` has 1: the radius)."""

    center: Tuple[float, ...]
    size: Tuple[float, ...]
    class_id: int
    material: int
    albedo: Color = (0.5, 0.5, 0.5)
    params: Tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)

    @property
    def is_sphere(self) -> bool:
        """Whether this primitive is a sphere."""
        return len(self.size) == 1

    def bounds(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return (min corner, max corner) of the primitive's bounding box."""
        center = np.asarray(self.center, dtype=np.float64)
        half = np.asarray(self.size, dtype=np.float64) * (1.0 if self.is_sphere else 0.5)
        return center - half, center + half


def box(x_range: Range, y_range: Range, z_range: Range, class_id: int, material: int,
        albedo: Color = (0.5, 0.5, 0.5),
        params: Optional[Sequence[float]] = None) -> 'Primitive':
    """Build a box primitive from (min, max) ranges along x, y and z."""
    lo = np.array([x_range[0], y_range[0], z_range[0]], dtype=np.float64)
    hi = np.array([x_range[1], y_range[1], z_range[1]], dtype=np.float64)
    return Primitive(tuple((lo + hi) / 2), tuple(hi - lo), class_id, material, tuple(albedo),
                     tuple(params) if params is not None else (0.0, 0.0, 0.0, 0.0))


@dataclass
class Lighting:
    """Sun, sky and camera response of one scene (colours are linear RGB)."""

    sun_direction: Tuple[float, ...] = (0.3, -0.8, 0.5)
    sun_color: Color = (1.0, 0.95, 0.9)
    ambient_color: Color = (0.45, 0.5, 0.6)
    sky_horizon: Color = (0.75, 0.82, 0.9)
    sky_zenith: Color = (0.25, 0.45, 0.85)
    cloud_cover: float = 0.3
    haze_distance_m: float = 400.0
    exposure: float = 1.0
    white_balance: Tuple[float, ...] = (1.0, 1.0, 1.0)
    noise_sigma: float = 2.0
    shadows: bool = True


@dataclass
class StreetLayout:
    """Everything needed to render one scene: the geometry, the road and the lighting."""

    primitives: List[Primitive] = field(default_factory=list)
    road: bool = True
    road_albedo: Color = (0.3, 0.3, 0.3)
    lane_lines_x: Tuple[float, ...] = ()
    dash_period_m: float = 8.0
    lighting: Lighting = field(default_factory=Lighting)


def _noise_texture(rng: np.random.Generator, smoothness: float) -> np.ndarray:
    """Return a tileable (TEXTURE_SIZE, TEXTURE_SIZE) noise with zero mean and unit deviation."""
    frequencies = np.fft.fftfreq(TEXTURE_SIZE)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.standard_normal((TEXTURE_SIZE, TEXTURE_SIZE)))
    texture = np.real(np.fft.ifft2(spectrum / radius ** smoothness))
    texture -= texture.mean()
    return (texture / texture.std()).astype(np.float32)


def _lookup(texture: np.ndarray, u: np.ndarray, v: np.ndarray,
            texels_per_metre: float) -> np.ndarray:
    """Sample a tileable texture at world coordinates (u, v) in metres (nearest texel)."""
    mask = TEXTURE_SIZE - 1
    row = np.floor(v * texels_per_metre).astype(np.int64) & mask
    col = np.floor(u * texels_per_metre).astype(np.int64) & mask
    return texture[row, col]


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> Tuple[float, float, float]:
    """Convert one HSV colour (hue in [0, 1)) to an RGB tuple in [0, 1]."""
    sector = int(hue * 6.0) % 6
    fraction = hue * 6.0 - int(hue * 6.0)
    p = value * (1.0 - saturation)
    q = value * (1.0 - fraction * saturation)
    t = value * (1.0 - (1.0 - fraction) * saturation)
    return [(value, t, p), (q, value, p), (p, value, t),
            (p, q, value), (t, p, value), (value, p, q)][sector]


def _srgb_to_linear(color: Iterable[float]) -> Color:
    """Convert an sRGB colour in [0, 1] to linear light."""
    return tuple(float(c) ** 2.2 for c in color)


class StreetSceneGenerator:
    """Render random street scenes (KITTI-6 classes) with exact depth and labels.

    Args:
        seed: base seed; ``render(index)`` depends only on (seed, index).
        height, width: image size in pixels.
        camera_height_m: height of the camera above the road.
        focal_length_px: focal length; default ``FOCAL_LENGTH_PER_WIDTH * width``.
    """

    class_names = classes.KITTI6_CLASS_NAMES
    class_colors = classes.KITTI6_CLASS_COLORS

    def __init__(self, seed: int = 0, height: int = 128, width: int = 416,
                 camera_height_m: float = CAMERA_HEIGHT_M,
                 focal_length_px: Optional[float] = None) -> None:
        self.seed = int(seed)
        self.height = int(height)
        self.width = int(width)
        self.camera_height_m = float(camera_height_m)
        focal = float(focal_length_px or FOCAL_LENGTH_PER_WIDTH * self.width)
        self.K = np.array([[focal, 0.0, (self.width - 1) / 2.0],
                           [0.0, focal, PRINCIPAL_ROW_FRACTION * (self.height - 1)],
                           [0.0, 0.0, 1.0]])
        texture_rng = np.random.default_rng(7)
        self._fine = _noise_texture(texture_rng, 0.6)
        self._coarse = _noise_texture(texture_rng, 1.6)
        self._cells = texture_rng.random((TEXTURE_SIZE, TEXTURE_SIZE)).astype(np.float32)
        cols, rows = np.meshgrid(np.arange(self.width), np.arange(self.height))
        self._rays = np.stack([(cols - self.K[0, 2]) / self.K[0, 0],
                               (rows - self.K[1, 2]) / self.K[1, 1],
                               np.ones_like(cols, dtype=np.float64)], axis=-1)

    # ------------------------------------------------------------------ public API
    def render(self, index: int) -> Scene:
        """Render scene number ``index`` (deterministic) and return a :class:`Scene`."""
        rng = np.random.default_rng([self.seed, int(index)])
        layout = self.random_layout(rng)
        return self.render_layout(layout, rng)

    def random_layout(self, rng: np.random.Generator) -> StreetLayout:
        """Draw a random street: road, sidewalks, buildings, lawns, trees, cars and lighting."""
        ground_y = self.camera_height_m
        layout = StreetLayout(lighting=self._random_lighting(rng))
        grey = rng.uniform(0.12, 0.3)
        tint = rng.uniform(-0.02, 0.02, 3)
        layout.road_albedo = tuple(np.clip(grey + tint, 0.03, 1.0))
        left_edge = -rng.uniform(2.0, 7.5)
        right_edge = rng.uniform(2.0, 7.5)
        lane_width = rng.uniform(2.8, 3.8)
        lines = np.arange(left_edge + lane_width, right_edge - 1.0, lane_width)
        layout.lane_lines_x = tuple(lines) if rng.random() < 0.8 else ()
        layout.dash_period_m = rng.uniform(6.0, 12.0)
        closed = rng.random() < 0.55
        street_end = rng.uniform(35.0, 140.0) if closed else STREET_LENGTH_M
        prims = layout.primitives
        suburban = rng.random() < 0.4
        for side, edge in ((-1, left_edge), (1, right_edge)):
            self._add_roadside(rng, prims, side, edge, street_end, ground_y, suburban)
        if closed:
            self._add_end_building(rng, prims, street_end, ground_y)
        self._add_cars(rng, prims, left_edge, right_edge, lines, min(street_end, 90.0), ground_y)
        return layout

    def render_layout(self, layout: StreetLayout,
                      rng: Optional[np.random.Generator] = None) -> Scene:
        """Ray-cast a :class:`StreetLayout` and shade it; returns a :class:`Scene`."""
        rng = rng if rng is not None else np.random.default_rng(0)
        depth, prim_index, normal = self._cast(layout)
        labels = np.full((self.height, self.width), classes.SKY, dtype=np.uint8)
        class_table = np.array([classes.ROAD] + [p.class_id for p in layout.primitives],
                               dtype=np.uint8)
        hit = prim_index >= 0
        labels[hit] = class_table[prim_index[hit]]
        image = self._shade(layout, depth, prim_index, normal, rng)
        return Scene(image, depth.astype(np.float32), labels, self.K.copy())

    # ------------------------------------------------------------------ layout
    def _random_lighting(self, rng: np.random.Generator) -> Lighting:
        """Draw sun, sky, haze and camera response: clear (with shadows) or overcast."""
        overcast = rng.random() < 0.3
        elevation = rng.uniform(0.25, 1.2)
        azimuth = rng.uniform(0.0, 2.0 * np.pi)
        sun = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation),
                        np.cos(elevation) * np.cos(azimuth)])
        warmth = np.clip(1.0 - elevation, 0.0, 1.0) * 0.35
        sun_color = np.array([1.0, 1.0 - 0.4 * warmth, 1.0 - 0.8 * warmth])
        if overcast:
            grey = rng.uniform(0.55, 0.85)
            horizon = np.full(3, grey) + rng.uniform(-0.03, 0.03, 3)
            zenith = horizon * rng.uniform(0.75, 0.95)
            sun_strength, ambient = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
        else:
            zenith = np.array(_hsv_to_rgb(rng.uniform(0.55, 0.66), rng.uniform(0.3, 0.75),
                                          rng.uniform(0.6, 0.95)))
            horizon = np.clip(zenith + rng.uniform(0.15, 0.4), 0.0, 1.0)
            sun_strength, ambient = rng.uniform(0.8, 1.4), rng.uniform(0.3, 0.55)
        ambient_color = ambient * (0.6 * np.array(_srgb_to_linear(zenith)) / max(
            float(np.mean(_srgb_to_linear(zenith))), 1e-3) * 0.3 + 0.7)
        return Lighting(
            sun_direction=tuple(sun), sun_color=tuple(sun_strength * sun_color),
            ambient_color=tuple(ambient_color), sky_horizon=_srgb_to_linear(horizon),
            sky_zenith=_srgb_to_linear(zenith), cloud_cover=rng.uniform(0.0, 0.7),
            haze_distance_m=rng.uniform(150.0, 900.0), exposure=rng.uniform(0.75, 1.35),
            white_balance=tuple(rng.uniform(0.9, 1.1, 3)), noise_sigma=rng.uniform(0.5, 4.0),
            shadows=not overcast)

    def _facade_albedo(self, rng: np.random.Generator) -> Color:
        """Draw a facade colour of any hue, mostly unsaturated."""
        hue = rng.random()
        return _srgb_to_linear(_hsv_to_rgb(hue, rng.uniform(0.05, 0.55), rng.uniform(0.3, 0.9)))

    def _foliage_albedo(self, rng: np.random.Generator) -> Color:
        """Draw a green (sometimes autumn brown) foliage colour."""
        hue = rng.uniform(0.16, 0.38) if rng.random() < 0.9 else rng.uniform(0.06, 0.14)
        return _srgb_to_linear(_hsv_to_rgb(hue, rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.6)))

    def _add_roadside(self, rng: np.random.Generator, prims: List[Primitive], side: int,
                      edge: float, street_end: float, ground_y: float, suburban: bool) -> None:
        """Add the sidewalk, buildings, gaps with lawns and hedges, and trees on one side.

        Suburban sides have lower houses, set further back, with more gaps.
        """
        gap_probability = 0.5 if suburban else 0.28
        curb_m = rng.uniform(0.1, 0.2)
        sidewalk_width = rng.uniform(1.5, 5.0)
        facade = edge + side * sidewalk_width
        paver = rng.uniform(0.3, 1.2)
        base = rng.uniform(0.3, 0.7)
        pavement = _srgb_to_linear(np.clip(base + rng.uniform(-0.06, 0.06, 3), 0.0, 1.0))
        prims.append(box(sorted((edge, edge + side * 60.0)), (ground_y - curb_m, ground_y + 1.0),
                         (-10.0, street_end + 20.0), classes.SIDEWALK, SIDEWALK, pavement,
                         (paver, rng.uniform(0.02, 0.08), 0.0, 0.0)))
        top_y = ground_y - curb_m
        z = -10.0
        while z < street_end:
            length = rng.uniform(6.0, 28.0)
            z_range = (z, min(z + length, street_end))
            if rng.random() < gap_probability:
                self._add_gap(rng, prims, side, facade, z_range, top_y)
            else:
                if suburban:
                    setback = rng.uniform(2.0, 10.0)
                    height = rng.uniform(3.0, 9.0)
                    self._add_gap(rng, prims, side, facade, z_range, top_y, far_building=False)
                else:
                    setback = rng.uniform(0.0, 2.5) if rng.random() < 0.4 else 0.0
                    height = (rng.uniform(4.0, 14.0) if rng.random() < 0.6
                              else rng.uniform(14.0, 30.0))
                depth = rng.uniform(8.0, 20.0)
                x_range = sorted((facade + side * setback, facade + side * (setback + depth)))
                floor_m = rng.uniform(2.8, 3.8)
                prims.append(box(x_range, (top_y - height, top_y), z_range, classes.BUILDING,
                                 FACADE, self._facade_albedo(rng),
                                 (rng.uniform(1.8, 4.5), floor_m, rng.uniform(0.3, 0.75),
                                  rng.uniform(0.3, 0.7))))
            z += length
        for _ in range(rng.poisson(3.0)):
            self._add_tree(rng, prims, edge + side * rng.uniform(0.6, 1.2),
                           rng.uniform(2.0, min(street_end, 80.0)), top_y)

    def _add_gap(self, rng: np.random.Generator, prims: List[Primitive], side: int,
                 facade: float, z_range: Tuple[float, float], top_y: float,
                 far_building: bool = True) -> None:
        """Fill a gap between buildings with a lawn, maybe a hedge, trees or a far building."""
        lawn = self._foliage_albedo(rng)
        prims.append(box(sorted((facade, facade + side * 60.0)), (top_y - 0.03, top_y + 1.0),
                         z_range, classes.VEGETATION, LAWN, lawn))
        if rng.random() < 0.5:
            hedge_h = rng.uniform(0.6, 2.2)
            x0 = facade + side * rng.uniform(0.0, 1.5)
            prims.append(box(sorted((x0, x0 + side * rng.uniform(0.6, 1.5))),
                             (top_y - hedge_h, top_y), z_range, classes.VEGETATION, FOLIAGE,
                             self._foliage_albedo(rng)))
        for _ in range(rng.integers(0, 3)):
            self._add_tree(rng, prims, facade + side * rng.uniform(1.5, 8.0),
                           rng.uniform(*z_range), top_y)
        if far_building and rng.random() < 0.5:
            x0 = facade + side * rng.uniform(12.0, 35.0)
            height = rng.uniform(6.0, 40.0)
            prims.append(box(sorted((x0, x0 + side * 15.0)), (top_y - height, top_y), z_range,
                             classes.BUILDING, FACADE, self._facade_albedo(rng),
                             (rng.uniform(1.8, 4.5), rng.uniform(2.8, 3.8),
                              rng.uniform(0.3, 0.75), rng.uniform(0.3, 0.7))))

    def _add_tree(self, rng: np.random.Generator, prims: List[Primitive], x: float, z: float,
                  ground_y: float) -> None:
        """Add a trunk (box) and a crown (sphere) standing at (x, z)."""
        radius = rng.uniform(1.0, 3.2)
        trunk_h = rng.uniform(1.8, 4.0)
        trunk_w = rng.uniform(0.2, 0.45)
        bark = _srgb_to_linear(_hsv_to_rgb(rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.6),
                                           rng.uniform(0.2, 0.45)))
        prims.append(box((x - trunk_w / 2, x + trunk_w / 2), (ground_y - trunk_h - radius / 2,
                                                              ground_y),
                         (z - trunk_w / 2, z + trunk_w / 2), classes.VEGETATION, TRUNK, bark))
        prims.append(Primitive((x, ground_y - trunk_h - radius, z), (radius,),
                               classes.VEGETATION, FOLIAGE, self._foliage_albedo(rng)))

    def _add_end_building(self, rng: np.random.Generator, prims: List[Primitive],
                          street_end: float, ground_y: float) -> None:
        """Close the street with a row of buildings across it."""
        x = -120.0
        while x < 120.0:
            width = rng.uniform(8.0, 30.0)
            if rng.random() < 0.15:
                self._add_tree(rng, prims, x + width / 2, street_end + rng.uniform(1.0, 4.0),
                               ground_y)
            else:
                prims.append(box((x, x + width), (ground_y - rng.uniform(5.0, 40.0), ground_y),
                                 (street_end, street_end + 20.0), classes.BUILDING, FACADE,
                                 self._facade_albedo(rng),
                                 (rng.uniform(1.8, 4.5), rng.uniform(2.8, 3.8),
                                  rng.uniform(0.3, 0.75), rng.uniform(0.3, 0.7))))
            x += width

    def _car_paint(self, rng: np.random.Generator) -> Color:
        """Draw a car colour: black, grey or white about half the time, else any hue."""
        choice = rng.random()
        if choice < 0.45:
            grey = rng.choice([rng.uniform(0.03, 0.12), rng.uniform(0.4, 0.6),
                               rng.uniform(0.75, 0.95)])
            return _srgb_to_linear((grey, grey, grey))
        return _srgb_to_linear(_hsv_to_rgb(rng.random(), rng.uniform(0.4, 0.95),
                                           rng.uniform(0.25, 0.9)))

    def _add_car(self, rng: np.random.Generator, prims: List[Primitive], x_center: float,
                 z_near: float, ground_y: float, along_z: bool = True) -> None:
        """Add a car (body, cabin, two axles) whose near end is at ``z_near``."""
        length = rng.uniform(3.7, 5.2)
        width = rng.uniform(1.6, 2.0)
        van = rng.random() < 0.15
        body_top = rng.uniform(0.85, 1.1)
        cabin_top = rng.uniform(1.8, 2.3) if van else rng.uniform(1.35, 1.6)
        paint = self._car_paint(rng)
        if along_z:
            size_x, size_z = width, length
        else:
            size_x, size_z = length, width
        x_range = (x_center - size_x / 2, x_center + size_x / 2)
        z_range = (z_near, z_near + size_z)
        clearance = rng.uniform(0.15, 0.3)
        prims.append(box(x_range, (ground_y - body_top, ground_y - clearance), z_range,
                         classes.CAR, CAR_BODY, paint))
        front_inset = 0.15 if van else rng.uniform(0.6, 1.2)
        back_inset = 0.1 if van else rng.uniform(0.3, 0.8)
        if along_z:
            cabin_x = (x_range[0] + 0.08, x_range[1] - 0.08)
            cabin_z = (z_range[0] + back_inset, z_range[1] - front_inset)
        else:
            cabin_x = (x_range[0] + back_inset, x_range[1] - front_inset)
            cabin_z = (z_range[0] + 0.08, z_range[1] - 0.08)
        prims.append(box(cabin_x, (ground_y - cabin_top, ground_y - body_top + 0.01), cabin_z,
                         classes.CAR, CAR_CABIN, paint, (0.08, body_top, 0.0, 0.0)))
        wheel_r = rng.uniform(0.3, 0.38)
        dark = _srgb_to_linear((0.06, 0.06, 0.06))
        for offset in (0.75, size_z - 0.75 if along_z else size_x - 0.75):
            if along_z:
                wx, wz = x_range, (z_range[0] + offset - wheel_r, z_range[0] + offset + wheel_r)
            else:
                wx = (x_range[0] + offset - wheel_r, x_range[0] + offset + wheel_r)
                wz = z_range
            prims.append(box(wx, (ground_y - 2 * wheel_r, ground_y), wz, classes.CAR, WHEEL,
                             dark))

    def _add_cars(self, rng: np.random.Generator, prims: List[Primitive], left_edge: float,
                  right_edge: float, lane_lines: np.ndarray, max_z: float,
                  ground_y: float) -> None:
        """Park cars along both curbs and put traffic in the lanes."""
        for side, edge in ((-1, left_edge), (1, right_edge)):
            if rng.random() < 0.25:
                continue
            z = rng.uniform(1.0, 10.0)
            density = rng.uniform(0.3, 0.9)
            while z < max_z:
                if rng.random() < density:
                    x = edge - side * rng.uniform(1.0, 1.3)
                    self._add_car(rng, prims, x, z, ground_y)
                z += rng.uniform(5.5, 9.0)
        bounds = np.concatenate([[left_edge], lane_lines, [right_edge]])
        lane_centers = (bounds[:-1] + bounds[1:]) / 2
        for _ in range(rng.poisson(2.0)):
            x = rng.choice(lane_centers) + rng.uniform(-0.3, 0.3)
            if (right_edge - left_edge) < 5.0:
                continue
            z = rng.uniform(5.0, max_z)
            if self._overlaps_car(prims, x, z):
                continue
            self._add_car(rng, prims, x, z, ground_y, along_z=rng.random() < 0.85)

    @staticmethod
    def _overlaps_car(prims: List[Primitive], x: float, z: float) -> bool:
        """Return whether a car at (x, z) would overlap a car body already placed."""
        for prim in prims:
            if prim.class_id == classes.CAR and prim.material == CAR_BODY:
                if abs(prim.center[0] - x) < 2.6 and abs(prim.center[2] - z) < 6.5:
                    return True
        return False

    # ------------------------------------------------------------------ ray casting
    def _screen_rect(self, lo: np.ndarray, hi: np.ndarray) -> Optional[Rect]:
        """Return the pixel rectangle (r0, r1, c0, c1) that may see the box [lo, hi]."""
        corners = np.array(np.meshgrid([lo[0], hi[0]], [lo[1], hi[1]], [lo[2], hi[2]]))
        corners = corners.reshape(3, -1)
        if corners[2].max() <= 0.0:
            return None
        if corners[2].min() <= 0.05:
            return 0, self.height, 0, self.width
        u = self.K[0, 0] * corners[0] / corners[2] + self.K[0, 2]
        v = self.K[1, 1] * corners[1] / corners[2] + self.K[1, 2]
        c0 = int(max(np.floor(u.min()), 0))
        c1 = int(min(np.ceil(u.max()) + 1, self.width))
        r0 = int(max(np.floor(v.min()), 0))
        r1 = int(min(np.ceil(v.max()) + 1, self.height))
        if c0 >= c1 or r0 >= r1:
            return None
        return r0, r1, c0, c1

    def _cast(self, layout: StreetLayout) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return per-pixel depth (inf = sky), primitive index (0 = road, -1 = sky) and normal."""
        rays = self._rays
        origin = np.zeros(3)
        if layout.road:
            depth = intersect_horizontal_plane(origin, rays, self.camera_height_m)
        else:
            depth = np.full((self.height, self.width), np.inf)
        prim_index = np.where(np.isfinite(depth), 0, -1).astype(np.int32)
        normal = np.zeros((self.height, self.width, 3), dtype=np.float32)
        normal[..., 1] = -1.0
        for number, prim in enumerate(layout.primitives, start=1):
            lo, hi = prim.bounds()
            rect = self._screen_rect(lo, hi)
            if rect is None:
                continue
            r0, r1, c0, c1 = rect
            sub_rays = rays[r0:r1, c0:c1]
            if prim.is_sphere:
                t = intersect_sphere(origin, sub_rays, prim.center, prim.size[0])
            else:
                t, axis, sign = intersect_box(origin, sub_rays, lo, hi)
            closer = t < depth[r0:r1, c0:c1]
            if not closer.any():
                continue
            depth[r0:r1, c0:c1][closer] = t[closer]
            prim_index[r0:r1, c0:c1][closer] = number
            if prim.is_sphere:
                points = sub_rays[closer] * t[closer][:, None]
                normal[r0:r1, c0:c1][closer] = (points - prim.center) / prim.size[0]
            else:
                face = np.zeros((int(closer.sum()), 3), dtype=np.float32)
                face[np.arange(len(face)), axis[closer]] = sign[closer]
                normal[r0:r1, c0:c1][closer] = face
        return depth, prim_index, normal

    def _in_shadow(self, layout: StreetLayout, points: np.ndarray,
                   sun: np.ndarray) -> np.ndarray:
        """Return a boolean mask of points (N, 3) whose ray to the sun is blocked."""
        order = np.argsort(points[:, 0])
        sorted_points = points[order]
        sorted_x = sorted_points[:, 0]
        lowest_y = sorted_points[:, 1].max()
        blocked = np.zeros(len(points), dtype=bool)
        for prim in layout.primitives:
            if prim.material in (LAWN, SIDEWALK):
                continue
            lo, hi = prim.bounds()
            if lo[1] >= lowest_y:
                continue
            # Points whose shadow ray can reach the caster lie within its footprint swept
            # along the sun direction, down to the lowest point.
            reach = (lo[1] - lowest_y) / sun[1] * sun
            x_lo, x_hi = lo[0] - max(reach[0], 0.0), hi[0] - min(reach[0], 0.0)
            z_lo, z_hi = lo[2] - max(reach[2], 0.0), hi[2] - min(reach[2], 0.0)
            first, last = np.searchsorted(sorted_x, (x_lo, x_hi))
            if first >= last:
                continue
            window = sorted_points[first:last]
            todo = np.flatnonzero((window[:, 2] >= z_lo) & (window[:, 2] <= z_hi)
                                  & ~blocked[first:last])
            if todo.size == 0:
                continue
            if prim.is_sphere:
                hits = np.isfinite(intersect_sphere(window[todo], sun, prim.center,
                                                    prim.size[0]))
            else:
                hits = box_blocks(window[todo], sun, lo, hi)
            blocked[first + todo[hits]] = True
        result = np.zeros(len(points), dtype=bool)
        result[order] = blocked
        return result

    # ------------------------------------------------------------------ shading
    def _shade(self, layout: StreetLayout, depth: np.ndarray, prim_index: np.ndarray,
               normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the (H, W, 3) uint8 picture: lit albedo, glass, haze, sky, exposure, noise."""
        light = layout.lighting
        hit = prim_index >= 0
        points = self._rays * np.where(hit, depth, 0.0)[..., None]
        albedo = np.zeros((self.height, self.width, 3), dtype=np.float32)
        table_albedo = np.array([layout.road_albedo] + [p.albedo for p in layout.primitives],
                                dtype=np.float32)
        table_material = np.array([ROAD] + [p.material for p in layout.primitives])
        table_params = np.array([(0.0,) * 4] + [p.params for p in layout.primitives],
                                dtype=np.float32)
        albedo[hit] = table_albedo[prim_index[hit]]
        material = np.full(prim_index.shape, -1)
        material[hit] = table_material[prim_index[hit]]
        params = np.zeros((self.height, self.width, 4), dtype=np.float32)
        params[hit] = table_params[prim_index[hit]]
        glass = np.zeros(prim_index.shape, dtype=bool)
        self._apply_textures(layout, material, points, normal, params, albedo, glass, prim_index)

        sun = np.asarray(light.sun_direction, dtype=np.float64)
        sun /= np.linalg.norm(sun)
        lambert = np.clip(normal @ sun.astype(np.float32), 0.0, None)
        lit = hit & (lambert > 0.0)
        if light.shadows and lit.any():
            lit_points = points[lit] + normal[lit] * 1e-3
            shadow = np.zeros(lit.shape, dtype=bool)
            shadow[lit] = self._in_shadow(layout, lit_points, sun)
            lambert = np.where(shadow, 0.0, lambert)
        # Faces turned away from the sky get less sky light (downward faces almost none).
        sky_view = 0.55 - 0.45 * normal[..., 1]
        irradiance = (np.asarray(light.ambient_color, dtype=np.float32) * sky_view[..., None]
                      + np.asarray(light.sun_color, dtype=np.float32) * lambert[..., None])
        color = albedo * irradiance
        sky_color = self._sky(light)
        reflection = sky_color[::-1] * 0.35 + 0.02
        color = np.where(glass[..., None], color * 0.4 + reflection, color)

        distance = np.where(hit, np.linalg.norm(points, axis=-1), 0.0)
        transmission = np.exp(-distance / light.haze_distance_m)[..., None].astype(np.float32)
        haze = np.asarray(light.sky_horizon, dtype=np.float32)
        color = color * transmission + haze * (1.0 - transmission)
        color = np.where(hit[..., None], color, sky_color)

        color = color * light.exposure * np.asarray(light.white_balance, dtype=np.float32)
        image = np.power(np.clip(color, 0.0, 1.0), 1.0 / 2.2) * 255.0
        image += rng.normal(0.0, light.noise_sigma, image.shape)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    def _sky(self, light: Lighting) -> np.ndarray:
        """Return the (H, W, 3) linear sky colour: a gradient with noise clouds."""
        rays = self._rays
        elevation = -rays[..., 1] / np.linalg.norm(rays, axis=-1)
        blend = np.clip(elevation, 0.0, 1.0) ** 0.6
        horizon = np.asarray(light.sky_horizon, dtype=np.float32)
        zenith = np.asarray(light.sky_zenith, dtype=np.float32)
        sky = horizon + (zenith - horizon) * blend[..., None]
        with np.errstate(divide='ignore'):
            scale = 1.0 / np.maximum(elevation, 0.02)
        cloud_u = rays[..., 0] * scale * 2.0
        cloud_v = rays[..., 2] * scale * 2.0
        density = _lookup(self._coarse, cloud_u, cloud_v, 6.0)
        cover = np.clip((density - (1.5 - 2.5 * light.cloud_cover)) * 0.8, 0.0, 1.0)
        cloud = np.full(3, 0.9, dtype=np.float32) * (horizon.mean() / 0.7) ** 0.5
        return (sky * (1.0 - cover[..., None]) + cloud * cover[..., None]).astype(np.float32)

    def _apply_textures(self, layout: StreetLayout, material: np.ndarray, points: np.ndarray,
                        normal: np.ndarray, params: np.ndarray, albedo: np.ndarray,
                        glass: np.ndarray, prim_index: np.ndarray) -> None:
        """Modulate the per-pixel albedo with each material's world-space texture."""
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        height_above = self.camera_height_m - y
        fine, coarse, cells = self._fine, self._coarse, self._cells

        mask = material == ROAD
        if mask.any():
            xm, zm = x[mask], z[mask]
            shade = 1.0 + 0.12 * _lookup(fine, xm, zm, 40.0) + 0.12 * _lookup(coarse, xm, zm, 2.0)
            paint = np.zeros(xm.shape, dtype=bool)
            dashes = np.mod(zm, layout.dash_period_m) < 0.45 * layout.dash_period_m
            for line_x in layout.lane_lines_x:
                paint |= (np.abs(xm - line_x) < 0.07) & dashes
            albedo[mask] *= shade[:, None]
            painted = albedo[mask]
            painted[paint] = 0.6
            albedo[mask] = painted

        mask = material == SIDEWALK
        if mask.any():
            xm, zm, pm = x[mask], z[mask], params[mask]
            paver, line = pm[:, 0], pm[:, 1]
            grout = ((np.mod(xm, paver) < line) | (np.mod(zm, paver) < line))
            curb = np.abs(normal[mask][:, 0]) > 0.5
            shade = 1.0 + 0.1 * _lookup(fine, xm, zm, 40.0) + 0.1 * _lookup(coarse, xm, zm, 1.0)
            shade = np.where(grout & ~curb, 0.65, shade) * np.where(curb, 1.2, 1.0)
            albedo[mask] *= shade[:, None]

        mask = material == FACADE
        if mask.any():
            nm, pm = normal[mask], params[mask]
            across = np.where(np.abs(nm[:, 0]) > 0.5, z[mask], x[mask])
            up = height_above[mask]
            # Facades built without parameters get a plain window grid of 3 m.
            spacing = np.where(pm[:, 0] > 0, pm[:, 0], 3.0)
            floor_m = np.where(pm[:, 1] > 0, pm[:, 1], 3.0)
            window_w, window_h = pm[:, 2], pm[:, 3]
            column = np.mod(across, spacing) / spacing
            row = np.mod(up, floor_m) / floor_m
            window = ((np.abs(column - 0.5) < window_w / 2) & (np.abs(row - 0.55) < window_h / 2)
                      & (up > floor_m * 0.8) & (np.abs(nm[:, 1]) < 0.5))
            weathering = 1.0 + 0.15 * _lookup(coarse, across, up, 0.5)
            brick = 1.0 + 0.06 * _lookup(fine, across, up, 30.0)
            albedo[mask] *= (weathering * brick)[:, None]
            pane = _lookup(cells, np.floor(across / spacing), np.floor(up / floor_m), 1.0)
            facade_albedo = albedo[mask]
            facade_albedo[window] = (0.03 + 0.08 * pane[window])[:, None] * np.array(
                [0.8, 0.9, 1.0], dtype=np.float32)
            albedo[mask] = facade_albedo
            glass_mask = glass[mask]
            glass_mask[window] = pane[window] > 0.5
            glass[mask] = glass_mask

        for kind, strength, scale in ((LAWN, 0.25, 20.0), (FOLIAGE, 0.45, 8.0),
                                      (TRUNK, 0.2, 20.0)):
            mask = material == kind
            if mask.any():
                xm, ym, zm = x[mask], y[mask], z[mask]
                leaves = 0.5 * (_lookup(fine, xm + zm, ym, scale)
                                + _lookup(fine, xm - 0.7 * zm, ym + 3.1, scale * 0.7))
                clumps = _lookup(coarse, xm + zm, ym, 1.5)
                shade = np.clip(1.0 + strength * leaves + 0.2 * clumps, 0.2, 2.0)
                albedo[mask] *= shade[:, None]

        mask = material == CAR_CABIN
        if mask.any():
            # Windows everywhere on the cabin's sides, a strip of paint at the bottom, paint roof.
            up, pm = height_above[mask], params[mask]
            roof = normal[mask][:, 1] < -0.5
            window = ~roof & (up > pm[:, 1] + pm[:, 0])
            cabin_albedo = albedo[mask]
            cabin_albedo[window] = np.array([0.02, 0.025, 0.03], dtype=np.float32)
            albedo[mask] = cabin_albedo
            glass_mask = glass[mask]
            glass_mask[window] = True
            glass[mask] = glass_mask

        mask = material == CAR_BODY
        if mask.any():
            grain = _lookup(fine, x[mask] + z[mask], y[mask], 20.0)
            albedo[mask] *= (1.0 + 0.04 * grain)[:, None]
