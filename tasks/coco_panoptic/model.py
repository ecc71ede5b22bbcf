"""COCO panoptic segmentation with Mask2Former (`task.model.name`); scored by PQ (with SQ, RQ, things
and stuff), mask AP of the thing classes and mIoU, all from one forward pass per batch.

Everything is scored at the evaluated (resized) image size against the transformed ground truth.
"""

from __future__ import annotations

import torch

from framework.vision.adapters import adapter_for
from framework.vision.lightning import VisionTaskModel
from framework.vision.metrics import CocoAP, Detections, MetricSet, PanopticQuality, SemanticIoU
from framework.vision.targets import semantic_target


class PanopticModel(VisionTaskModel):
    kind = "universal_segmentation"
    prediction_format = "panoptic"  # framework predict: COCO panoptic json + PNGs

    def __init__(self, optimizer, config, categories):
        super().__init__(optimizer, config, categories.names)
        self.categories = categories
        self.things = categories.thing_mask()
        self.adapter = adapter_for(self.network, outputs=("panoptic", "instance", "semantic"), things=self.things)

    def new_metric(self) -> MetricSet:
        return MetricSet(pq=PanopticQuality(self.categories), ap=CocoAP(("segm",)),
                         iou=SemanticIoU(len(self.class_names)))

    def update_metric(self, predictions, batch) -> None:
        for pred, sample in zip(predictions, batch.targets):
            self.metric["pq"].update(pred.panoptic, pred.segment_labels, sample.panoptic, sample.labels,
                                     sample.iscrowd, image_id=sample.image_id)
            # AP of a panoptic model is scored on things, crowds flagged as COCO's evaluation does
            self.metric["ap"].update(pred.instances, Detections.from_sample(sample, things_only=self.things),
                                     image_id=sample.image_id)
        self.metric["iou"].update(torch.stack([p.semantic for p in predictions]),
                                  torch.stack([semantic_target(s) for s in batch.targets]).to(predictions[0].semantic.device))
