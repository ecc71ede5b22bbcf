"""MaskRCNNAdapter: Batch -> Mask R-CNN's inputs, its detections -> the metrics' Detections.

Targets per image: the non-crowd objects that have pixels, as boxes in the batch's pixel coordinates
(the padded images': padding is at the bottom and right, so the image's own pixels keep theirs) with
their labels, and for instance segmentation their masks at the padded size, each box the tight box of
its mask (a crop changes both alike). Crowd regions are never targets (COCO's rule; the metric still
scores detections on them as COCO does).

Predictions, in the same coordinates: `Detections` (boxes, labels, scores) for object_detection; for
the instance task (`outputs=("instance",)`, as coco_instance asks) a SegmentationPrediction whose
`instances` also carry the masks, the pasted mask probabilities thresholded at 0.5 (the paper's
binarisation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from framework.vision.adapters.base import Adapter
from framework.vision.adapters.mask2former import SegmentationPrediction
from framework.vision.collate import Batch
from framework.vision.metrics.detection import Detections
from framework.vision.sample import masks_to_boxes
from framework.vision.targets import box_targets, mask_targets

OUTPUTS = ("detection", "instance")


class MaskRCNNAdapter(Adapter):
    def __init__(self, model: nn.Module, outputs: tuple[str, ...] = ("detection",), **options: Any):
        unknown = set(outputs) - set(OUTPUTS)
        if unknown or not outputs:
            raise ValueError(f"outputs must be some of {OUTPUTS}, got {list(outputs)}")
        self.model, self.outputs = model, tuple(outputs)
        self.with_masks = "instance" in self.outputs

    def targets(self, batch: Batch) -> list[dict[str, Any]]:
        device = batch.images.device
        out = []
        for sample in batch.targets:
            if self.with_masks:
                masks, labels = mask_targets(sample)
                boxes = masks_to_boxes(masks)
                out.append({"boxes": boxes.to(device), "class_labels": labels.to(device), "masks": masks.to(device)})
            else:
                boxes, labels = box_targets(sample)
                out.append({"boxes": boxes.to(device, torch.float32), "class_labels": labels.to(device)})
        return out

    def inputs(self, batch: Batch) -> dict[str, Any]:
        return {**self.image_inputs(batch), "labels": self.targets(batch)}

    def image_inputs(self, batch: Batch) -> dict[str, Any]:
        return {"pixel_values": batch.images, "pixel_mask": batch.pixel_mask.long()}

    def predictions(self, outputs: Any, batch: Batch) -> list[Any]:
        if outputs.pred_boxes is None:
            raise ValueError("Mask R-CNN returned no detections: predictions need the model in eval mode")
        out = []
        for boxes, scores, labels, masks in zip(outputs.pred_boxes, outputs.pred_scores, outputs.pred_labels,
                                                outputs.pred_masks):
            detections = Detections(labels=labels.detach().cpu(), boxes=boxes.detach().float().cpu(),
                                    scores=scores.detach().float().cpu())
            if self.with_masks:
                detections.masks = (masks.detach() > 0.5).cpu()
                out.append(SegmentationPrediction(instances=detections))
            else:
                out.append(detections)
        return out
