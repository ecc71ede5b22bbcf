"""Semantic segmentation with SegFormer or UperNet (`task.model.name`); scored by mIoU."""

from __future__ import annotations

from framework.vision.lightning import VisionTaskModel
from framework.vision.metrics.semantic import SemanticIoU


class SemanticSegmentationModel(VisionTaskModel):
    kind = "semantic_segmentation"
    prediction_format = "semantic"  # framework predict: PNG label maps

    def new_metric(self) -> SemanticIoU:
        return SemanticIoU(len(self.class_names), class_names=self.class_names)

    def update_metric(self, predictions, batch) -> None:
        # padding and void are IGNORE_LABEL in the targets, so they are not scored
        self.metric.update(predictions, self.adapter.targets(batch))

    def activations(self, batch):
        logits = self.network(pixel_values=batch.images).logits
        return {"logits": logits, "probabilities": logits.softmax(1)}
