"""Readers of folder layouts: ImageNet-style class-per-folder classification and ADE20K semantic
segmentation (ADEChallengeData2016). Both return Samples (sample.py).

    image folders:  root/{split}/{class name}/*.jpg            (ImageNet-1k: root/train, root/val)
    ADE20K:         root/images/{training,validation}/*.jpg
                    root/annotations/{training,validation}/*.png   (0 = unlabelled, 1..150 = classes)
                    root/objectInfo150.csv                         (class names, optional)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from framework.errors import DataError, FrameworkError
from framework.vision.categories import Categories
from framework.vision.decoded_cache import CachedDecoding
from framework.vision.images import read_image, read_label_png
from framework.vision.sample import IGNORE_LABEL, Sample

DATA_DOC = "docs/vision_data.md"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _missing(what: str, path: Path) -> DataError:
    return DataError(f"{what} not found: looked for {path}; see {DATA_DOC} for how to get and lay out the data")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def prepare_image_folder(root: str | Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """Check a class-per-folder dataset (`framework prepare` for ImageNet-style data): each split has
    class folders, and every split the same classes."""
    root = Path(root).expanduser()
    classes = None
    for split in splits:
        found = ImageFolder.classes_in(root, split)
        if classes is not None and found != classes:
            raise FrameworkError(f"{root / split} has other class folders than {root / splits[0]}")
        classes = found
    return root


class ImageFolder(CachedDecoding, Dataset):
    """One image per sample, its class (the folder name, in sorted order) as `labels` of shape [1].
    Samples are `transform(decode(index))`, the decoded part cached per `task.cache` (decoded_cache.py)."""

    def __init__(self, root: str | Path, split: str, transform: Callable[[Sample], Sample] | None = None):
        self.root, self.split, self.transform = Path(root).expanduser(), split, transform
        classes = self.classes_in(self.root, split)
        self.categories = Categories.from_names(classes)
        self.files: list[tuple[Path, int]] = []
        for label, name in enumerate(classes):
            images = _images_in(self.root / split / name)
            if not images:
                raise FrameworkError(f"class folder {self.root / split / name} holds no images")
            self.files += [(path, label) for path in images]

    @staticmethod
    def classes_in(root: Path, split: str) -> list[str]:
        folder = Path(root) / split
        if not folder.is_dir():
            raise _missing("image folder", folder)
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not classes:
            raise FrameworkError(f"{folder} has no class folders (expected {folder}/<class name>/<images>)")
        return classes

    def __len__(self) -> int:
        return len(self.files)

    def identity(self) -> dict[str, Any]:
        # an entry is named after its file (sources), the class list fixes the label it gets
        return {"reader": "ImageFolder", "root": str(self.root.resolve()), "split": self.split,
                "classes": self.categories.names}

    def sources(self, index: int) -> list[Path]:
        return [self.files[index][0]]

    def decode(self, index: int) -> Sample:
        path, label = self.files[index]
        image = read_image(path)
        return Sample(image=image, image_id=index, orig_size=tuple(image.shape[1:]),
                      labels=torch.tensor([label]), iscrowd=torch.tensor([False]))


ADE_SPLITS = {"train": "training", "val": "validation", "training": "training", "validation": "validation"}


def prepare_ade20k(root: str | Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """Check an ADEChallengeData2016 folder (`framework prepare` for ADE20K)."""
    root = Path(root).expanduser()
    for split in splits:
        for kind in ("images", "annotations"):
            folder = root / kind / ADE_SPLITS.get(split, split)
            if not folder.is_dir():
                raise _missing("ADE20K", folder)
    return root


class ADE20K(CachedDecoding, Dataset):
    """ADE20K scene parsing (150 classes): `semantic` holds labels 0..149 and IGNORE_LABEL where the
    annotation says 0 (unlabelled), the usual "reduce zero label" convention."""

    def __init__(self, root: str | Path, split: str, transform: Callable[[Sample], Sample] | None = None):
        self.root, self.transform = Path(root).expanduser(), transform
        prepare_ade20k(self.root, (split,))
        self.folder = folder = ADE_SPLITS.get(split, split)
        self.images = _images_in(self.root / "images" / folder)
        if not self.images:
            raise FrameworkError(f"no images in {self.root / 'images' / folder}")
        self.annotations = [self.root / "annotations" / folder / f"{p.stem}.png" for p in self.images]
        self.categories = Categories.from_names(self._class_names())
        # annotation value v -> label v-1; 0 (unlabelled) -> IGNORE_LABEL
        self._lookup = torch.full((256,), IGNORE_LABEL, dtype=torch.int64)
        self._lookup[1 : self.categories.num_classes + 1] = torch.arange(self.categories.num_classes)

    def _class_names(self) -> list[str]:
        """Names from objectInfo150.csv ("wall", "building;edifice" -> "building"), else class_0.."""
        info = self.root / "objectInfo150.csv"
        if not info.exists():
            return [f"class_{i}" for i in range(150)]
        try:
            with open(info, newline="", encoding="utf-8") as handle:
                rows = sorted(csv.DictReader(handle), key=lambda r: int(r["Idx"]))
            return [row["Name"].split(";")[0].strip() for row in rows]
        except (KeyError, ValueError, csv.Error) as exc:
            raise FrameworkError(f"cannot read class names from {info}: {exc!r}") from None

    def __len__(self) -> int:
        return len(self.images)

    def identity(self) -> dict[str, Any]:
        return {"reader": "ADE20K", "root": str(self.root.resolve()), "split": self.folder,
                "classes": self.categories.num_classes}

    def sources(self, index: int) -> list[Path]:
        return [self.images[index], self.annotations[index]]

    def decode(self, index: int) -> Sample:
        image = read_image(self.images[index])
        annotation = self.annotations[index]
        raw = read_label_png(annotation)
        if raw.shape != tuple(image.shape[1:]):
            raise FrameworkError(f"annotation {annotation} is {raw.shape[0]}x{raw.shape[1]}, its image "
                                 f"{image.shape[1]}x{image.shape[2]}")
        semantic = self._lookup[torch.from_numpy(raw.astype(np.int64))]
        return Sample(image=image, image_id=index, orig_size=tuple(image.shape[1:]), semantic=semantic)
