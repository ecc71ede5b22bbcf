"""The bundled data of the vision tasks: synthetic scenes written as a real COCO-format dataset.

Each image has "stuff" regions (textured sky, grass, water, wall) split by wavy boundaries, and
"thing" shapes (circle, square, triangle, star, ring, cross) of varying colour, size and rotation that
overlap one another. Boundaries between stuff regions are unlabelled (void), as in COCO, and some images
hold a crowd region: a cluster of small shapes annotated once with iscrowd=1. Category ids have gaps,
as COCO's do, so the label mapping is exercised.

The output is the COCO layout (coco.py) with splits train, val and test: JPEG images,
instances_{split}.json (things, RLE masks), panoptic_{split}.json and PNGs (things and stuff). Every
image is drawn from its own random stream seeded by (seed, split, index), so a spec always gives the same
files. `prepare_synthetic_coco` generates into a cache folder on first use (a second or two for the
default 384 images) and is safe when several processes do it at once: each writes into its own
temporary folder and renames it into place; the first rename wins.

`prepare_synthetic_classification` draws the same kind of scenes with a single shape each into a
class-per-folder layout (folders.py): the bundled data of image classification.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from framework.training.data_cache import generate_once
from framework.vision.images import id_to_rgb
from framework.vision.shapes import STUFF, THINGS, colour, shape_mask, stuff_regions, texture

VERSION = 1  # bump when the drawing changes: the cache folder name includes it
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SyntheticCocoSpec:
    """What to generate; every field is part of the cache folder's name."""

    seed: int = 0
    height: int = 128
    width: int = 128
    train: int = 256
    val: int = 64
    test: int = 64
    max_objects: int = 6        # things per image: 1..max_objects
    crowd_fraction: float = 0.2  # fraction of images with one crowd region

    def key(self) -> str:
        text = json.dumps({"version": VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def count(self, split: str) -> int:
        return getattr(self, split)


def categories() -> list[dict[str, Any]]:
    """The panoptic categories (things and stuff); instances files list the things only."""
    cats = [{"id": i, "name": n, "supercategory": "shape", "isthing": 1} for i, n, _ in THINGS]
    return cats + [{"id": i, "name": n, "supercategory": "background", "isthing": 0} for i, n in STUFF]


def prepare_synthetic_coco(spec: SyntheticCocoSpec | None = None, cache_dir: str | Path | None = None) -> Path:
    """The root of the synthetic COCO dataset of `spec`, generated on first use; safe to call from
    several processes at once."""
    spec = spec or SyntheticCocoSpec()
    return generate_once(f"synthetic_coco-v{VERSION}-{spec.key()}", lambda root: write_synthetic_coco(root, spec),
                         cache_dir)


def write_synthetic_coco(root: str | Path, spec: SyntheticCocoSpec) -> Path:
    """Write the whole dataset of `spec` under `root` (which must not hold another dataset)."""
    from PIL import Image

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "spec.json").write_text(json.dumps({"version": VERSION, **dataclasses.asdict(spec)}, indent=1))
    for split_index, split in enumerate(SPLITS):
        images, panoptic, instances = [], [], []
        (root / split).mkdir(exist_ok=True)
        png_dir = root / "annotations" / f"panoptic_{split}"
        png_dir.mkdir(exist_ok=True)
        for index in range(spec.count(split)):
            image_id = split_index * 1_000_000 + index + 1
            rng = np.random.default_rng([spec.seed, split_index, index])
            scene = draw_scene(rng, spec.height, spec.width, spec.max_objects, spec.crowd_fraction)
            name = f"{image_id:012d}"
            Image.fromarray(scene.image).save(root / split / f"{name}.jpg", quality=92)
            Image.fromarray(id_to_rgb(scene.id_map)).save(png_dir / f"{name}.png")
            images.append({"id": image_id, "file_name": f"{name}.jpg", "height": spec.height, "width": spec.width})
            panoptic.append({"image_id": image_id, "file_name": f"{name}.png", "segments_info": scene.segments})
            instances += _instance_annotations(scene, image_id, first_id=len(instances) + 1)
        thing_cats = [{k: c[k] for k in ("id", "name", "supercategory")} for c in categories() if c["isthing"]]
        _write_json(root / "annotations" / f"panoptic_{split}.json",
                    {"images": images, "annotations": panoptic, "categories": categories()})
        _write_json(root / "annotations" / f"instances_{split}.json",
                    {"images": images, "annotations": instances, "categories": thing_cats})
    return root


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")))


@dataclass
class Scene:
    image: np.ndarray       # [H, W, 3] uint8
    id_map: np.ndarray      # [H, W] int64 segment ids, 0 = void
    segments: list[dict[str, Any]]  # COCO segments_info (id, category_id, iscrowd, bbox, area)


def draw_scene(rng: np.random.Generator, height: int, width: int, max_objects: int, crowd_fraction: float) -> Scene:
    """One image: stuff regions with textures, a possible crowd, then overlapping things on top."""
    image = np.zeros((height, width, 3), dtype=np.float32)
    owner = np.zeros((height, width), dtype=np.int64)  # object index + 1 per pixel, 0 = void
    objects: list[tuple[int, bool]] = []  # (category id, iscrowd) of object k-1

    regions, boundary = stuff_regions(rng, height, width)
    stuff = rng.choice(len(STUFF), size=int(regions.max()) + 1, replace=False)
    for region, which in enumerate(stuff):
        inside = regions == region
        image[inside] = texture(rng, STUFF[which][1], height, width)[inside]
        objects.append((STUFF[which][0], False))
        owner[inside & ~boundary] = len(objects)

    if rng.random() < crowd_fraction:
        which = int(rng.integers(len(THINGS)))
        crowd = np.zeros((height, width), dtype=bool)
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        for _ in range(int(rng.integers(6, 11))):
            size = rng.uniform(0.03, 0.06) * min(height, width)
            y, x = cy + rng.normal(0, 0.08) * height, cx + rng.normal(0, 0.08) * width
            shape = shape_mask(THINGS[which][1], y, x, size, rng.uniform(0, 2 * np.pi), height, width)
            image[shape] = colour(rng, THINGS[which][2])
            crowd |= shape
        objects.append((THINGS[which][0], True))
        owner[crowd] = len(objects)

    # a little vertical shading so that a shape is not one flat colour
    shade = np.broadcast_to(1.0 + 0.15 * np.linspace(-1, 1, height, dtype=np.float32)[:, None, None],
                            (height, width, 1))
    for _ in range(int(rng.integers(1, max_objects + 1))):
        which = int(rng.integers(len(THINGS)))
        size = rng.uniform(0.12, 0.4) * min(height, width)
        y, x = rng.uniform(0.05, 0.95) * height, rng.uniform(0.05, 0.95) * width
        shape = shape_mask(THINGS[which][1], y, x, size, rng.uniform(0, 2 * np.pi), height, width)
        image[shape] = colour(rng, THINGS[which][2]) * shade[shape]
        objects.append((THINGS[which][0], False))
        owner[shape] = len(objects)  # later shapes occlude earlier ones

    image += 4.0 * rng.standard_normal(image.shape, dtype=np.float32)  # sensor noise
    return _finish(rng, np.clip(image, 0, 255).astype(np.uint8), owner, objects)


def _finish(rng: np.random.Generator, image: np.ndarray, owner: np.ndarray,
            objects: list[tuple[int, bool]]) -> Scene:
    """Random segment ids (COCO's are colours, not 1..N), and segments_info of the objects still visible;
    things reduced to a few pixels by occlusion become void, as unannotatable bits are in COCO."""
    area = np.bincount(owner.ravel(), minlength=len(objects) + 1)
    ids = np.zeros(len(objects) + 1, dtype=np.int64)
    segments = []
    taken: set[int] = set()
    for k, (category_id, iscrowd) in enumerate(objects, start=1):
        is_thing = category_id < STUFF[0][0]
        if area[k] == 0 or (is_thing and area[k] < 6):
            continue
        segment_id = 0
        while segment_id == 0 or segment_id in taken:
            segment_id = int(rng.integers(1, 1 << 24))
        taken.add(segment_id)
        ids[k] = segment_id
        rows, cols = np.nonzero(owner == k)
        x0, y0 = int(cols.min()), int(rows.min())
        segments.append({"id": segment_id, "category_id": category_id, "iscrowd": int(iscrowd),
                         "bbox": [x0, y0, int(cols.max()) + 1 - x0, int(rows.max()) + 1 - y0], "area": int(area[k])})
    return Scene(image, ids[owner], segments)


def _instance_annotations(scene: Scene, image_id: int, first_id: int) -> list[dict[str, Any]]:
    """Instances json entries of the visible things: compressed RLE, or uncompressed RLE for a crowd
    (COCO's own convention)."""
    from pycocotools import mask as mask_utils

    out = []
    for segment in scene.segments:
        if segment["category_id"] >= STUFF[0][0]:
            continue
        mask = scene.id_map == segment["id"]
        if segment["iscrowd"]:
            segmentation = uncompressed_rle(mask)
        else:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        out.append({"id": first_id + len(out), "image_id": image_id, "category_id": segment["category_id"],
                    "segmentation": segmentation, "area": segment["area"], "bbox": segment["bbox"],
                    "iscrowd": segment["iscrowd"]})
    return out


def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with a run of 0s."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


@dataclass(frozen=True)
class SyntheticClassificationSpec:
    """Images with one shape on a stuff background; the class is the shape's (circle, square, ...)."""

    seed: int = 0
    height: int = 64
    width: int = 64
    train: int = 600
    val: int = 120
    test: int = 120

    def key(self) -> str:
        text = json.dumps({"version": VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def prepare_synthetic_classification(spec: SyntheticClassificationSpec | None = None,
                                     cache_dir: str | Path | None = None) -> Path:
    """The root of a class-per-folder dataset (root/{train,val,test}/{shape}/*.jpg), generated on first use."""
    spec = spec or SyntheticClassificationSpec()
    return generate_once(f"synthetic_shapes-v{VERSION}-{spec.key()}",
                         lambda root: write_synthetic_classification(root, spec), cache_dir)


def write_synthetic_classification(root: str | Path, spec: SyntheticClassificationSpec) -> Path:
    from PIL import Image

    root = Path(root)
    for split_index, split in enumerate(SPLITS):
        for _, name, _ in THINGS:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for index in range(getattr(spec, split)):
            # a separate stream from the COCO scenes' (the 100 offset), so the two datasets differ
            rng = np.random.default_rng([spec.seed, 100 + split_index, index])
            which = index % len(THINGS)  # balanced classes
            image = draw_single(rng, which, spec.height, spec.width)
            Image.fromarray(image).save(root / split / THINGS[which][1] / f"{index:06d}.jpg", quality=92)
    return root


def draw_single(rng: np.random.Generator, which: int, height: int, width: int) -> np.ndarray:
    """One shape of class `which`, large enough to recognise, on textured stuff regions."""
    image = np.zeros((height, width, 3), dtype=np.float32)
    regions, _ = stuff_regions(rng, height, width)
    stuff = rng.choice(len(STUFF), size=int(regions.max()) + 1, replace=False)
    for region, kind in enumerate(stuff):
        inside = regions == region
        image[inside] = texture(rng, STUFF[kind][1], height, width)[inside]
    size = rng.uniform(0.35, 0.7) * min(height, width)
    y, x = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    shape = shape_mask(THINGS[which][1], y, x, size, rng.uniform(0, 2 * np.pi), height, width)
    image[shape] = colour(rng, THINGS[which][2])
    image += 4.0 * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)
