"""COCO detection with the DETR family (`task.model.name`); scored by COCO box AP.

Boxes are scored at the evaluated (resized) image size, against the transformed ground truth: crowd
regions are kept as crowds (a detection on one is not a false positive), as COCO's evaluation does.
"""

from __future__ import annotations

from framework.vision.adapters.detr import image_sizes
from framework.vision.lightning import VisionTaskModel
from framework.vision.metrics.detection import CocoAP, Detections


class DetectionModel(VisionTaskModel):
    kind = "object_detection"
    prediction_format = "detection"  # framework predict: COCO results json

    def new_metric(self) -> CocoAP:
        return CocoAP(("bbox",))

    def update_metric(self, predictions, batch) -> None:
        for pred, sample, size in zip(predictions, batch.targets, image_sizes(batch).tolist()):
            self.metric.update(pred, Detections.from_sample(sample),
                               image_id=sample.image_id, image_size=tuple(size))
