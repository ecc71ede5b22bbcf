"""COCO 2017 readers: instances (boxes and masks, through pycocotools) and panoptic (json + PNG).

Layout (the official one, and the one the synthetic generator writes; `split` is e.g. "val2017"):

    root/{split}/*.jpg                              images
    root/annotations/instances_{split}.json         boxes, polygons / RLE masks, iscrowd
    root/annotations/panoptic_{split}.json          segments_info per image, categories with isthing
    root/annotations/panoptic_{split}/*.png         segment ids as colours (images.py)

Both datasets return `Sample`s (sample.py) with contiguous labels (categories.py). Crowd annotations are
kept with `iscrowd` set, so metrics can ignore them and targets.py can leave them out of training.
Void pixels of a panoptic map are 0. Missing data is an error naming the path and where to get it;
never a silent fallback to other data.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from framework.errors import DataError, FrameworkError
from framework.vision.categories import Categories
from framework.vision.decoded_cache import CachedDecoding, file_stamp
from framework.vision.images import index_segments, read_image, read_panoptic_png
from framework.vision.sample import Sample, masks_to_boxes

DATA_DOC = "docs/vision_data.md"
KINDS = ("instances", "panoptic")


def instances_file(root: Path, split: str) -> Path:
    return Path(root) / "annotations" / f"instances_{split}.json"


def panoptic_file(root: Path, split: str) -> Path:
    return Path(root) / "annotations" / f"panoptic_{split}.json"


def panoptic_dir(root: Path, split: str) -> Path:
    return Path(root) / "annotations" / f"panoptic_{split}"


def image_dir(root: Path, split: str) -> Path:
    return Path(root) / split


def prepare_coco(root: str | Path, splits: tuple[str, ...] = ("train2017", "val2017"),
                 kinds: tuple[str, ...] = KINDS) -> Path:
    """Check that a COCO folder has what the readers need (`framework prepare` for real COCO).

    Nothing is downloaded: COCO's terms ask each user to get it from its site. The first missing path
    is reported, with where to get the data.
    """
    root = Path(root).expanduser()
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise FrameworkError(f"unknown COCO annotation kind(s) {sorted(unknown)} (known: {', '.join(KINDS)})")
    needed = [root]
    for split in splits:
        needed.append(image_dir(root, split))
        if "instances" in kinds:
            needed.append(instances_file(root, split))
        if "panoptic" in kinds:
            needed += [panoptic_file(root, split), panoptic_dir(root, split)]
    for path in needed:
        if not path.exists():
            raise DataError(
                f"COCO data not found: looked for {path}; download COCO 2017 into {root} as {DATA_DOC} "
                "describes (or use the bundled synthetic data)"
            )
    return root


def load_json(path: Path, what: str) -> dict[str, Any]:
    """A COCO json file, with errors that name it."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise FrameworkError(f"{what} not found: {path}; see {DATA_DOC} for how to get it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FrameworkError(f"cannot read {what} {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FrameworkError(f"malformed {what} {path}: missing a top-level object")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise FrameworkError(f"malformed {what} {path}: missing {', '.join(missing)}")
    return data


class PackedRecords:
    """A list of small dicts pickled into one numpy byte buffer.

    DataLoader workers are forked; touching a Python object writes its reference count, which copies
    its memory page into each worker. For COCO train's 118k images and 860k annotations that is GBs
    per worker. One numpy buffer has no per-record objects to touch.
    """

    def __init__(self, records: list[dict[str, Any]]):
        blobs = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in records]
        self._offsets = np.cumsum([0] + [len(b) for b in blobs], dtype=np.int64)
        self._buffer = np.frombuffer(b"".join(blobs), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        start, end = self._offsets[index], self._offsets[index + 1]
        return pickle.loads(self._buffer[start:end].tobytes())


def image_id(value: Any) -> int | str:
    """An image id as the COCO file gives it: an int (COCO) or a string (Cityscapes panoptic and other
    COCO-format sets). Compared as given, as COCO's own evaluation does: "1" is not 1."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"image id {value!r} is neither an integer nor a string")
    return value


def _image_records(data: dict[str, Any], path: Path, what: str, int_ids: bool) -> dict[int | str, dict[str, Any]]:
    """Image entries by id. `int_ids` turns ids into ints (the instances reader: the detection metric's
    COCO evaluation numbers images); otherwise they stay as the file gives them (`image_id`)."""
    as_id = int if int_ids else image_id
    try:
        return {as_id(im["id"]): {"id": as_id(im["id"]), "file_name": im["file_name"], "height": int(im["height"]),
                                  "width": int(im["width"])} for im in data["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameworkError(f"malformed {what} {path}: an image entry lacks or mangles {exc}") from None


class _CocoDataset(CachedDecoding, Dataset):
    """Shared part of the two readers: records, categories, the image file and the transform. Samples
    are `transform(decode(index))`, the decoded part cached when `task.cache` says so (decoded_cache.py)."""

    what = "COCO annotations"

    def __init__(self, root: str | Path, split: str, transform: Callable[[Sample], Sample] | None):
        self.root, self.split, self.transform = Path(root), split, transform
        self.categories: Categories
        self.records: PackedRecords
        self.image_ids: list[int | str]

    def __len__(self) -> int:
        return len(self.records)

    def _read_image(self, record: dict[str, Any]) -> torch.Tensor:
        path = image_dir(self.root, self.split) / record["file_name"]
        image = read_image(path)
        if tuple(image.shape[1:]) != (record["height"], record["width"]):
            raise FrameworkError(
                f"image {path} is {image.shape[1]}x{image.shape[2]} but {self.annotation_file} says "
                f"{record['height']}x{record['width']}"
            )
        return image

    def identity(self) -> dict[str, Any]:
        # the annotation file fixes which record (files, labels) index i is
        return {"reader": type(self).__name__, "root": str(self.root.resolve()), "split": self.split,
                "annotations": file_stamp(self.annotation_file), "options": self.options()}

    def options(self) -> dict[str, Any]:
        return {}

    @property
    def annotation_file(self) -> Path:
        raise NotImplementedError


class CocoInstances(_CocoDataset):
    """COCO instances: labels, xyxy boxes, iscrowd and (with `masks=True`) instance masks decoded by
    pycocotools from polygons or RLE, whose tight boxes then replace the json's boxes (they differ by
    under a pixel). `masks=False` skips decoding for box-only detection and keeps the json's boxes.
    `skip_empty` leaves out images without annotations (as detection training usually does)."""

    what = "COCO instances annotations"

    def __init__(self, root: str | Path, split: str, transform: Callable[[Sample], Sample] | None = None,
                 masks: bool = True, skip_empty: bool = False):
        super().__init__(root, split, transform)
        self.masks, self.skip_empty = masks, skip_empty
        path = self.annotation_file
        data = load_json(path, self.what)
        self.categories = Categories.from_coco(data["categories"], str(path))
        images = _image_records(data, path, self.what, int_ids=True)
        for image in images.values():
            image["anns"] = []
        try:
            for ann in data["annotations"]:
                x, y, w, h = (float(v) for v in ann["bbox"])
                if w <= 0 or h <= 0:
                    continue  # a degenerate box: nothing to detect (DETR's loader drops these too)
                images[int(ann["image_id"])]["anns"].append({
                    "label": self.categories.label(ann["category_id"]), "box": (x, y, x + w, y + h),
                    "iscrowd": bool(ann.get("iscrowd", 0)), "segmentation": ann.get("segmentation"),
                })
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameworkError(f"malformed {self.what} {path}: an annotation lacks or mangles {exc}") from None
        kept = [r for r in images.values() if r["anns"] or not skip_empty]
        if not kept:
            raise FrameworkError(f"no images in {path}")
        self.image_ids = [r["id"] for r in kept]
        self.records = PackedRecords(kept)

    @property
    def annotation_file(self) -> Path:
        return instances_file(self.root, self.split)

    def options(self) -> dict[str, Any]:
        return {"masks": self.masks, "skip_empty": self.skip_empty}

    def sources(self, index: int) -> list[Path]:
        return [image_dir(self.root, self.split) / self.records[index]["file_name"]]

    def decode(self, index: int) -> Sample:
        record = self.records[index]
        image = self._read_image(record)
        anns = record["anns"]
        height, width = record["height"], record["width"]
        sample = Sample(
            image=image, image_id=record["id"], orig_size=(height, width),
            labels=torch.tensor([a["label"] for a in anns], dtype=torch.int64),
            iscrowd=torch.tensor([a["iscrowd"] for a in anns], dtype=torch.bool),
            boxes=torch.tensor([a["box"] for a in anns], dtype=torch.float32).reshape(-1, 4),
        )
        if self.masks:
            # with masks, boxes are the masks' tight boxes (transforms.py keeps them so)
            sample.masks = self._decode_masks(anns, height, width, record["file_name"])
            sample.boxes = masks_to_boxes(sample.masks)
        return sample

    def _decode_masks(self, anns: list[dict[str, Any]], height: int, width: int, name: str) -> torch.Tensor:
        from pycocotools import mask as mask_utils

        if not anns:
            return torch.zeros(0, height, width, dtype=torch.bool)
        rles = []
        try:
            for ann in anns:
                segmentation = ann["segmentation"]
                if isinstance(segmentation, list):  # polygons: one RLE per polygon, merged
                    rles.append(mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width)))
                elif isinstance(segmentation["counts"], list):  # uncompressed RLE (crowds)
                    rles.append(mask_utils.frPyObjects(segmentation, height, width))
                else:  # compressed RLE
                    rles.append(segmentation)
            decoded = mask_utils.decode(rles)  # [H, W, N] uint8, Fortran order
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FrameworkError(
                f"cannot decode the segmentation of image {name} in {self.annotation_file}: {exc!r}") from None
        return torch.from_numpy(np.ascontiguousarray(decoded.transpose(2, 0, 1))).to(torch.bool)


class CocoPanoptic(_CocoDataset):
    """COCO panoptic: every segment (things and stuff) as an object of the Sample's panoptic map, with
    its label and iscrowd. Semantic maps follow from it (targets.semantic_target)."""

    what = "COCO panoptic annotations"

    def __init__(self, root: str | Path, split: str, transform: Callable[[Sample], Sample] | None = None):
        super().__init__(root, split, transform)
        path = self.annotation_file
        data = load_json(path, self.what)
        self.categories = Categories.from_coco(data["categories"], str(path))
        images = _image_records(data, path, self.what, int_ids=False)
        records = []
        try:
            for ann in data["annotations"]:
                image = images[image_id(ann["image_id"])]
                segments = ann["segments_info"]
                image["png"] = ann["file_name"]
                image["segment_ids"] = [int(s["id"]) for s in segments]
                image["labels"] = [self.categories.label(s["category_id"]) for s in segments]
                image["iscrowd"] = [bool(s.get("iscrowd", 0)) for s in segments]
                records.append(image)
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameworkError(f"malformed {self.what} {path}: an annotation lacks or mangles {exc}") from None
        if not records:
            raise FrameworkError(f"no annotated images in {path}")
        self.image_ids = [r["id"] for r in records]
        self.records = PackedRecords(records)

    @property
    def annotation_file(self) -> Path:
        return panoptic_file(self.root, self.split)

    def sources(self, index: int) -> list[Path]:
        record = self.records[index]
        return [image_dir(self.root, self.split) / record["file_name"], panoptic_dir(self.root, self.split) / record["png"]]

    def decode(self, index: int) -> Sample:
        record = self.records[index]
        image = self._read_image(record)
        png = panoptic_dir(self.root, self.split) / record["png"]
        ids = read_panoptic_png(png)
        if ids.shape != tuple(image.shape[1:]):
            raise FrameworkError(f"panoptic PNG {png} is {ids.shape[0]}x{ids.shape[1]}, its image "
                                 f"{image.shape[1]}x{image.shape[2]}")
        panoptic = index_segments(ids, record["segment_ids"], source=f"panoptic PNG {png}")
        sample = Sample(
            image=image, image_id=record["id"], orig_size=(record["height"], record["width"]),
            labels=torch.tensor(record["labels"], dtype=torch.int64),
            iscrowd=torch.tensor(record["iscrowd"], dtype=torch.bool),
            panoptic=torch.from_numpy(panoptic),
        )
        return sample
