"""Panoptic data: COCO-format panoptic segmentation (every thing and stuff segment), the bundled scenes
or COCO 2017 panoptic. Flip, large-scale jitter and a square crop for training, shorter-side resize for
evaluation (task_data.CocoTaskData; Mask2Former: jitter 0.1-2.0, crop 1024, evaluation 800 / 1333).
"""

from __future__ import annotations

from framework.vision.coco import CocoPanoptic
from framework.vision.task_data import CocoTaskData


class PanopticDataModule(CocoTaskData):
    kind = "panoptic"

    def read(self, root, split, transform):
        return CocoPanoptic(root, split, transform)
