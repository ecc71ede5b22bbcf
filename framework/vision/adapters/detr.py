"""The DETR family (DETR, Conditional DETR, Deformable DETR, RT-DETR): set prediction of boxes.

Targets are per-image dicts of `class_labels` and `boxes` as (centre x, centre y, width, height)
fractions of the image's own size (its unpadded part), the convention of the models' losses and of
their pretrained checkpoints. Predictions are scaled back by the same size, so they come out in the
batch's pixel coordinates, where the targets' boxes are too.

Scores: DETR classifies each query over the classes plus "no object" with a softmax; the others score
each class with a sigmoid (focal loss) and have no such class. A query's score is its best class's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from framework.vision.adapters.base import Adapter
from framework.vision.collate import Batch
from framework.vision.metrics.detection import Detections
from framework.vision.targets import box_targets, to_cxcywh


def image_sizes(batch: Batch) -> Tensor:
    """int64 [B, 2]: (height, width) of each image's unpadded part (padding goes to the bottom and right)."""
    mask = batch.pixel_mask.bool()
    return torch.stack([mask.any(2).sum(1), mask.any(1).sum(1)], dim=1)


class DetrAdapter(Adapter):
    def __init__(self, model: nn.Module, max_detections: int = 100):
        self.model, self.max_detections = model, max_detections
        self.num_labels = int(model.config.num_labels)
        # RT-DETR has no pixel_mask input: it sees the padding as image
        self.uses_pixel_mask = model.config.model_type != "rt_detr"

    def targets(self, batch: Batch) -> list[dict[str, Tensor]]:
        device = batch.images.device
        out = []
        for sample, (height, width) in zip(batch.targets, image_sizes(batch).tolist()):
            boxes, labels = box_targets(sample)
            out.append({"class_labels": labels.to(device), "boxes": to_cxcywh(boxes, height, width).to(device)})
        return out

    def inputs(self, batch: Batch) -> dict[str, Any]:
        return {**self.image_inputs(batch), "labels": self.targets(batch)}

    def image_inputs(self, batch: Batch) -> dict[str, Any]:
        inputs = {"pixel_values": batch.images}
        if self.uses_pixel_mask:
            inputs["pixel_mask"] = batch.pixel_mask.long()
        return inputs

    def predictions(self, outputs: Any, batch: Batch) -> list[Detections]:
        logits = outputs.logits.detach()
        if logits.shape[-1] == self.num_labels + 1:  # DETR: the last class is "no object"
            scores, labels = logits.softmax(-1)[..., :-1].max(-1)
        else:
            scores, labels = logits.sigmoid().max(-1)
        boxes = outputs.pred_boxes.detach()
        centre, size = boxes[..., :2], boxes[..., 2:]
        xyxy = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
        out = []
        for index, (height, width) in enumerate(image_sizes(batch).tolist()):
            scale = torch.tensor([width, height, width, height], dtype=xyxy.dtype, device=xyxy.device)
            keep = scores[index].argsort(descending=True)[: self.max_detections]
            image_boxes = (xyxy[index, keep] * scale)
            image_boxes[:, 0::2] = image_boxes[:, 0::2].clamp(0, width)
            image_boxes[:, 1::2] = image_boxes[:, 1::2].clamp(0, height)
            out.append(Detections(labels=labels[index, keep].cpu(), boxes=image_boxes.cpu(), scores=scores[index, keep].cpu()))
        return out
