"""Detection data: COCO-format instances (boxes of the thing classes), the bundled scenes or COCO 2017.

Training: random flip, scale jitter `min_scale`..`max_scale` of `crop_size` and a `crop_size` square
crop; evaluation: shorter side `eval_short`, longer side at most `eval_max_size` (DETR: 800 / 1333).
Images without objects stay in evaluation (false positives there count) but are left out of training.
"""

from __future__ import annotations

from framework.task import TaskDataModule
from framework.vision.coco import CocoInstances
from framework.vision.sample import Collate
from framework.vision.task_data import coco_categories, coco_root, coco_splits
from framework.vision.transforms import Compose, Normalize, ResizeShortestEdge, train_transforms


def _reader(root, split, transform):
    # boxes only: decoding masks would cost time for nothing; training skips images without objects
    return CocoInstances(root, split, transform, masks=False, skip_empty=split.startswith("train"))


class DetectionDataModule(TaskDataModule):
    def __init__(self, config):
        super().__init__(config)
        task = config.task
        self.collate_fn = Collate(size_divisor=32)
        self.train_transform = train_transforms(int(task.crop_size), float(task.min_scale), float(task.max_scale))
        self.eval_transform = Compose((ResizeShortestEdge(int(task.eval_short), int(task.eval_max_size)), Normalize()))
        self.categories = coco_categories(task, "instances")
        self.class_names = self.categories.names

    def prepare_data(self) -> None:
        coco_root(self.config.task, "instances")

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is None:
            self.data_train, self.data_val, self.data_test = coco_splits(
                self.config.task, "instances", _reader, self.train_transform, self.eval_transform)
