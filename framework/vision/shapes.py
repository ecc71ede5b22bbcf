"""Drawing for the synthetic datasets: textured "stuff" regions and "thing" shapes, in numpy.

synthetic.py composes them into COCO-format scenes and single-shape classification images.
"""

from __future__ import annotations

import numpy as np

VOID_BAND = 1  # half-width in pixels of the unlabelled band along stuff boundaries
# (category id, name, base RGB colour): ids with gaps, as in COCO
THINGS = (
    (1, "circle", (220, 40, 40)), (2, "square", (240, 200, 30)), (4, "triangle", (150, 60, 200)),
    (5, "star", (250, 130, 20)), (7, "ring", (30, 200, 220)), (8, "cross", (240, 240, 240)),
)
STUFF = ((101, "sky"), (103, "grass"), (105, "water"), (110, "wall"))


def stuff_regions(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Region index per pixel (2 or 3 regions: a wavy horizon, maybe a wavy vertical split below it) and
    the band of pixels along the boundaries that stays unlabelled."""
    ys, xs = np.ogrid[0:height, 0:width]
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)
    horizon = height * rng.uniform(0.3, 0.7) + height * 0.06 * np.sin(xs / width * rng.uniform(2, 8) + rng.uniform(0, 6))
    distance = ys - horizon  # signed distance to the boundary, in pixels (approximately)
    regions = (distance > 0).astype(np.int64)
    boundary = np.abs(distance) < VOID_BAND
    if rng.random() < 0.6:
        split = width * rng.uniform(0.3, 0.7) + width * 0.05 * np.sin(ys / height * rng.uniform(2, 8))
        below = distance > 0
        regions[below & (xs > split)] = 2
        boundary |= below & (np.abs(xs - split) < VOID_BAND)
    return regions, boundary


def texture(rng: np.random.Generator, name: str, height: int, width: int) -> np.ndarray:
    """A [H, W, 3] float texture per stuff class, with per-image variation of colour and pattern."""
    ys, xs = np.ogrid[0:height, 0:width]
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)
    jitter = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    if name == "sky":  # a vertical gradient from blue to pale
        t = (ys / height)[..., None]
        out = np.broadcast_to((1 - t) * np.array([90, 150, 235]) + t * np.array([200, 225, 250]), (height, width, 3))
    elif name == "grass":  # green with coarse blotches and fine vertical streaks
        blotch = rng.standard_normal((height // 8 + 1, width // 8 + 1), dtype=np.float32)
        blotch = blotch.repeat(8, 0).repeat(8, 1)[:height, :width]
        streak = rng.standard_normal((1, width), dtype=np.float32)
        out = np.array([60, 150, 50], dtype=np.float32) + (18 * blotch + 12 * streak)[..., None]
    elif name == "water":  # blue with horizontal ripples
        ripple = np.sin(ys / rng.uniform(2, 5) + 0.8 * np.sin(xs / rng.uniform(6, 14)))
        out = np.array([30, 80, 160], dtype=np.float32) + (25 * ripple)[..., None]
    else:  # wall: bricks with mortar lines
        brick_h, brick_w = rng.integers(6, 12), rng.integers(14, 24)
        offset = ((ys // brick_h) % 2) * (brick_w // 2)
        mortar = ((ys % brick_h) < 1.5) | (((xs + offset) % brick_w) < 1.5)
        out = np.where(mortar[..., None], np.array([170, 170, 160]), np.array([150, 70, 50]))
    return np.clip(out * jitter, 0, 255).astype(np.float32)


def colour(rng: np.random.Generator, base: tuple[int, int, int]) -> np.ndarray:
    return np.clip(np.array(base, dtype=np.float32) * rng.uniform(0.75, 1.15, 3), 0, 255).astype(np.float32)


def shape_mask(kind: str, y: float, x: float, size: float, angle: float, height: int, width: int) -> np.ndarray:
    """A bool [H, W] mask of one shape of the given kind, centre (y, x), about `size` pixels across."""
    from PIL import Image, ImageDraw

    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    r = size / 2

    def polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        c, s = np.cos(angle), np.sin(angle)
        return [(x + px * c - py * s, y + px * s + py * c) for px, py in points]

    if kind == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=1)
    elif kind == "ring":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=1)
        draw.ellipse([x - 0.55 * r, y - 0.55 * r, x + 0.55 * r, y + 0.55 * r], fill=0)
    elif kind == "square":
        draw.polygon(polygon([(-r, -r), (r, -r), (r, r), (-r, r)]), fill=1)
    elif kind == "triangle":
        draw.polygon(polygon([(r * np.cos(a), r * np.sin(a)) for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]), fill=1)
    elif kind == "star":
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        draw.polygon(polygon([(q * np.cos(a), q * np.sin(a)) for q, a in zip(radii, np.arange(10) * np.pi / 5)]), fill=1)
    else:  # cross
        a, b = r, 0.35 * r
        draw.polygon(polygon([(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b),
                              (-a, b), (-a, -b), (-b, -b)]), fill=1)
    return np.asarray(canvas, dtype=bool)
