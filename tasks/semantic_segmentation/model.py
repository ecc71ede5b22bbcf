"""Semantic segmentation with SegFormer or UperNet (`task.model.name`); scored by mIoU.

At each test epoch's end a few test images are drawn beside their ground truth and the predicted masks
(framework/vision/mask_figures.py) into <run dir>/figures/<best|last>/predicted_masks_test.png, which
`framework plot` and `framework report` show.
"""

from __future__ import annotations

from framework.vision.lightning import VisionTaskModel
from framework.vision.mask_figures import MaskSamples, masks_figure
from framework.vision.metrics.semantic import SemanticIoU

PICTURED = 4  # test images drawn with their masks: enough to see what the model gets wrong


class SemanticSegmentationModel(VisionTaskModel):
    kind = "semantic_segmentation"
    prediction_format = "semantic"  # framework predict: PNG label maps

    def new_metric(self) -> SemanticIoU:
        return SemanticIoU(len(self.class_names), class_names=self.class_names)

    def update_metric(self, predictions, batch) -> None:
        # padding and void are IGNORE_LABEL in the targets, so they are not scored
        targets = self.adapter.targets(batch)
        self.metric.update(predictions, targets)
        if self._trainer is not None and self._trainer.testing:
            self.pictured.add(batch.images, batch.pixel_mask, targets, predictions)

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.pictured = MaskSamples(PICTURED)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.save_figure(masks_figure(self.pictured, self.class_names), "predicted_masks_test",
                         f"the first {len(self.pictured.samples)} test images, their ground truth and the predicted "
                         "masks (black: not scored)")

    def activations(self, batch):
        logits = self.network(pixel_values=batch.images).logits
        return {"logits": logits, "probabilities": logits.softmax(1)}
