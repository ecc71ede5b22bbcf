"""Data plumbing shared by the vision tasks: where the data is (bundled synthetic COCO or a real
folder), and the split rule for real datasets that have no labelled test split.

`CocoTaskData` is the LightningDataModule of the COCO-format tasks (detection, instance, panoptic).

Real COCO and ADE20K publish labels for train and val only. The tasks report on val (as papers do) as
their test set and select checkpoints on a fixed `val_fraction` of train, held out with `split_seed`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset, Subset

from framework.training.task import TaskDataModule
from framework.vision.categories import Categories
from framework.vision.coco import instances_file, load_json, panoptic_file, prepare_coco
from framework.vision.collate import Collate
from framework.vision.decoded_cache import check_mode, use_cache
from framework.vision.normalization import model_normalization
from framework.vision.synthetic import SyntheticCocoSpec, prepare_synthetic_coco
from framework.vision.transforms import eval_transforms, train_transforms

COCO_SPLITS = {"train": "train2017", "test": "val2017"}  # val: held out of train2017


def bundled_spec(task: Any) -> SyntheticCocoSpec:
    size = int(task.bundled_image_size)
    return SyntheticCocoSpec(height=size, width=size, max_objects=int(task.get("bundled_max_objects", 6)))


def coco_root(task: Any, kind: str) -> Path:
    """The COCO-format root: the bundled scenes when task.data_dir is null, else the real folder
    (checked, so a missing one is one clear error naming the path)."""
    if task.data_dir is None:
        return prepare_synthetic_coco(bundled_spec(task))
    root = Path(task.data_dir).expanduser()
    return prepare_coco(root, tuple(COCO_SPLITS.values()), kinds=(kind,))


def coco_categories(task: Any, kind: str) -> Categories:
    """The categories of a COCO-format root, read from its smallest annotation file (the eval split's)."""
    root = coco_root(task, kind)
    split = "val" if task.data_dir is None else COCO_SPLITS["test"]
    path = panoptic_file(root, split) if kind == "panoptic" else instances_file(root, split)
    data = load_json(path, f"COCO {kind} annotations")  # which checks that it has categories
    return Categories.from_coco(data["categories"], str(path))


def coco_splits(task: Any, kind: str, reader: Callable[..., Dataset],
                train_transform: Callable, eval_transform: Callable) -> tuple[Dataset, Dataset, Dataset]:
    """(train, val, test) datasets of a COCO-format root read by `reader(root, split, transform)`, their
    decoded samples cached as `task.cache` says (decoded_cache.py)."""
    root = coco_root(task, kind)
    if task.data_dir is None:
        splits = (reader(root, "train", train_transform), reader(root, "val", eval_transform),
                  reader(root, "test", eval_transform))
    else:
        train = reader(root, COCO_SPLITS["train"], train_transform)
        train, val = hold_out(train, eval_transform, float(task.val_fraction), int(task.split_seed))
        splits = (train, val, reader(root, COCO_SPLITS["test"], eval_transform))
    use_cache(splits, task.get("cache"))
    return splits


def hold_out(train: Dataset, eval_transform: Callable, fraction: float, seed: int) -> tuple[Subset, Subset]:
    """A fixed random `fraction` of `train`'s samples, read with `eval_transform`, for validation, the
    rest of `train` for training: they never share a sample. The validation side is a shallow copy of
    the reader with its transform swapped (every reader keeps it in `.transform`), so the annotation
    file or folder listing is read once."""
    held = copy.copy(train)
    held.transform = eval_transform
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    count = max(1, int(len(order) * fraction))
    return Subset(train, order[count:]), Subset(held, order[:count])


class CocoTaskData(TaskDataModule):
    """The data of a COCO-format task (`kind` "instances" or "panoptic"), bundled scenes or COCO 2017.

    Training: random flip, scale jitter `min_scale`..`max_scale` of `crop_size` and a `crop_size` square
    crop, padded to it; evaluation: shorter side `eval_short`, longer side at most `eval_max_size`.
    Batches are padded to a multiple of 32 (the backbones' largest stride). Subclasses say how a split is
    read: `read(root, split, transform)`.
    """

    kind = "instances"

    def __init__(self, config: Any):
        super().__init__(config)
        task = config.task
        check_mode(task.get("cache"))  # a bad task.cache fails before any data is read
        self.collate_fn = Collate(size_divisor=32)
        # the statistics the model was pretrained with (framework/vision/normalization.py)
        norm = model_normalization(str(task.model.name), task.model.get("backbone"),
                                   tuple(config.engine.get("plugin_paths") or ()))
        self.train_transform = train_transforms(int(task.crop_size), float(task.min_scale), float(task.max_scale),
                                                mean=norm.mean, std=norm.std)
        self.eval_transform = eval_transforms(int(task.eval_short), int(task.eval_max_size), mean=norm.mean, std=norm.std)
        self.categories = coco_categories(task, self.kind)
        self.class_names = self.categories.names

    def read(self, root: Path, split: str, transform: Callable) -> Dataset:
        raise NotImplementedError

    def prepare_data(self) -> None:
        coco_root(self.config.task, self.kind)

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is None:
            self.data_train, self.data_val, self.data_test = coco_splits(
                self.config.task, self.kind, self.read, self.train_transform, self.eval_transform)
