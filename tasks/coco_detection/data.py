"""Detection data: COCO-format instances (boxes of the thing classes), the bundled scenes or COCO 2017.

Flip, scale jitter and crop for training, shorter-side resize for evaluation (task_data.CocoTaskData;
DETR evaluates at 800 / 1333). Images without objects stay in evaluation (false positives there count)
but are left out of training.
"""

from __future__ import annotations

from framework.vision.coco import CocoInstances
from framework.vision.task_data import CocoTaskData


class DetectionDataModule(CocoTaskData):
    kind = "instances"

    def read(self, root, split, transform):
        # boxes only: decoding masks would cost time for nothing; training skips images without objects
        return CocoInstances(root, split, transform, masks=False, skip_empty=split.startswith("train"))
