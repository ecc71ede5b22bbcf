"""COCO instance segmentation with Mask2Former (`task.model.name`); scored by COCO mask AP.

Masks are scored at the evaluated (resized) image size against the transformed ground truth; crowd
regions are kept as crowds (a detection on one is no false positive), as COCO's evaluation does.
"""

from __future__ import annotations

from framework.vision.adapters import adapter_for
from framework.vision.lightning import VisionTaskModel
from framework.vision.metrics import CocoAP, Detections


class InstanceModel(VisionTaskModel):
    kind = "universal_segmentation"
    prediction_format = "instance"  # framework predict: COCO results json with RLE masks

    def __init__(self, optimizer, config, class_names):
        super().__init__(optimizer, config, class_names)
        self.adapter = adapter_for(self.network, outputs=("instance",))

    def new_metric(self) -> CocoAP:
        return CocoAP(("segm",))

    def update_metric(self, predictions, batch) -> None:
        for pred, sample in zip(predictions, batch.targets):
            self.metric.update(pred.instances, Detections.from_sample(sample), image_id=sample.image_id)
