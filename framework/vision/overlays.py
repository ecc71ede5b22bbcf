"""Pictures of predictions for a person to look at (`framework predict`'s overlays/): the image with
its boxes, masks, label maps or panoptic segments drawn in colour and named by class.

Small images (the bundled 64-128 px scenes) are enlarged first, so that class names stay readable.
Colours come from a fixed palette indexed by class (label maps) or segment (instances, panoptic), so one
class has one colour across the pictures of a label map.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from torch import Tensor

MIN_SIDE = 256  # pictures are enlarged to at least this shorter side
ALPHA = 0.5  # opacity of a mask over its image
SCORE_THRESHOLD = 0.5  # detections drawn: those at least this confident (COCO demos draw 0.5 and up)


def colour(index: int) -> tuple[int, int, int]:
    """A distinct, saturated colour for an index: hues a golden-ratio step apart."""
    red, green, blue = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.75, 1.0)
    return int(red * 255), int(green * 255), int(blue * 255)


def _enlarged(image: Tensor, *maps: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], int]:
    """(RGB [H, W, 3], maps, factor): image and maps repeated `factor` times along each axis."""
    rgb = image.permute(1, 2, 0).cpu().numpy().astype(np.uint8)
    factor = max(1, -(-MIN_SIDE // min(rgb.shape[:2])))
    grow = lambda a: a.repeat(factor, axis=-2).repeat(factor, axis=-1)  # noqa: E731
    return rgb.repeat(factor, 0).repeat(factor, 1), [grow(m) for m in maps], factor


def _paint(rgb: np.ndarray, mask: np.ndarray, rgb_colour: tuple[int, int, int]) -> None:
    rgb[mask] = (rgb[mask] * (1 - ALPHA) + np.array(rgb_colour) * ALPHA).astype(np.uint8)


def _label(draw, xy: tuple[float, float], text: str, fill: tuple[int, int, int]) -> None:
    """`text` on a filled box at `xy` (its top left), clipped to the picture's top edge."""
    x, y = xy
    left, top, right, bottom = draw.textbbox((x, y), text)
    draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=fill)
    draw.text((x, y), text, fill=(0, 0, 0))


def _save(rgb: np.ndarray, path: Path, texts: list[tuple[tuple[float, float], str, tuple[int, int, int]]],
          boxes: list[tuple[tuple[float, ...], tuple[int, int, int]]] = ()) -> Path:
    from PIL import Image, ImageDraw

    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    for box, rgb_colour in boxes:
        draw.rectangle(box, outline=rgb_colour, width=2)
    for xy, text, rgb_colour in texts:
        _label(draw, xy, text, rgb_colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def draw_classification(image: Tensor, probabilities: Tensor, names: list[str], path: Path, k: int = 3) -> Path:
    """The image with its `k` most probable classes and their probabilities."""
    rgb, _, _ = _enlarged(image)
    scores, labels = probabilities.topk(min(k, len(probabilities)))
    texts = [((4, 4 + 14 * rank), f"{names[label]} {score:.2f}", colour(label))
             for rank, (label, score) in enumerate(zip(labels.tolist(), scores.tolist()))]
    return _save(rgb, path, texts)


def draw_label_map(image: Tensor, labels: Tensor, names: list[str], path: Path) -> Path:
    """The image with each pixel tinted by its class, and a legend of the classes present."""
    rgb, (grown,), _ = _enlarged(image, labels.numpy())
    present = [int(label) for label in np.unique(grown)]
    for label in present:
        _paint(rgb, grown == label, colour(label))
    texts = [((4, 4 + 14 * row), names[label] if label < len(names) else str(label), colour(label))
             for row, label in enumerate(present)]
    return _save(rgb, path, texts)


def draw_detections(image: Tensor, boxes: Tensor, labels: Tensor, scores: Tensor, names: list[str], path: Path,
                    masks: Tensor | None = None) -> Path:
    """The image with the detections scoring at least SCORE_THRESHOLD: box, mask, class and score."""
    keep = (scores >= SCORE_THRESHOLD).nonzero().view(-1).tolist()
    grown = [masks[index].numpy() for index in keep] if masks is not None else []
    rgb, grown, factor = _enlarged(image, *grown)
    for order, mask in enumerate(grown):
        _paint(rgb, mask, colour(order))
    drawn, texts = [], []
    for order, index in enumerate(keep):
        box = tuple(float(v) * factor for v in boxes[index].tolist())
        drawn.append((box, colour(order)))
        texts.append(((box[0] + 2, box[1] + 2), f"{names[int(labels[index])]} {float(scores[index]):.2f}", colour(order)))
    return _save(rgb, path, texts, drawn)


def draw_panoptic(image: Tensor, segments: Tensor, segment_labels: Tensor, names: list[str], path: Path) -> Path:
    """The image with each segment in its own colour and its class named at the segment's centre."""
    rgb, (grown,), _ = _enlarged(image, segments.numpy())
    texts = []
    for index, label in enumerate(segment_labels.tolist()):
        mask = grown == index + 1
        if not mask.any():
            continue
        _paint(rgb, mask, colour(index))
        rows, cols = np.nonzero(mask)
        texts.append(((float(cols.mean()) - 8, float(rows.mean()) - 6), names[label], colour(index)))
    return _save(rgb, path, texts)
