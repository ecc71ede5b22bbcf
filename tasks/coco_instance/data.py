"""Instance data: COCO-format instances with their masks (the thing classes), the bundled scenes or
COCO 2017. Flip, large-scale jitter and a square crop for training, shorter-side resize for evaluation
(task_data.CocoTaskData; Mask2Former: jitter 0.1-2.0, crop 1024, evaluation 800 / 1333). Images
without objects stay in evaluation but are left out of training.
"""

from __future__ import annotations

from framework.vision.coco import CocoInstances
from framework.vision.task_data import CocoTaskData


class InstanceDataModule(CocoTaskData):
    kind = "instances"

    def read(self, root, split, transform):
        return CocoInstances(root, split, transform, masks=True, skip_empty=split.startswith("train"))
