"""Mask2Former (Cheng et al. 2022): mask classification, one model for panoptic, instance and semantic
segmentation.

Targets: one binary mask per non-crowd object with pixels, and its label (targets.mask_targets); the
instance task gives only thing objects. The model answers per query a class distribution over the
classes plus "no object" and mask logits at 1/4 of the padded input size.

Predictions (upsampled to the padded batch size; padding is void or outside every mask), each as the
paper's inference does it:
- panoptic: keep queries whose best class is a real class with probability above `object_threshold`;
  each pixel goes to the kept query with the highest score x mask probability; a query keeps the
  pixels it won inside its own mask (probability >= 0.5) when it won at least `overlap_threshold` as
  many pixels as that mask has; stuff segments of one class merge. Out: an index map (0 = void, k = segment k-1) and the segments' labels.
- instance: the `max_detections` best (query, thing class) pairs by class probability, each with its
  mask (logit > 0) and the score class probability x mean mask probability inside the mask.
- semantic: per pixel the class with the highest sum over queries of class x mask probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from framework.vision.adapters.base import Adapter
from framework.vision.collate import Batch
from framework.vision.metrics.detection import Detections
from framework.vision.sample import masks_to_boxes
from framework.vision.targets import mask_targets

OUTPUTS = ("panoptic", "instance", "semantic")


@dataclass
class SegmentationPrediction:
    """One image's predictions; the ones not asked for are None."""

    panoptic: Tensor | None = None         # int32 [H, W]: 0 = void, k = segment k-1
    segment_labels: Tensor | None = None   # int64 [S]: label of each segment of `panoptic`
    instances: Detections | None = None    # masks bool [N, H, W], boxes, labels, scores
    semantic: Tensor | None = None         # int64 [H, W]


class Mask2FormerAdapter(Adapter):
    def __init__(self, model: nn.Module, outputs: tuple[str, ...] = ("panoptic",), things: Tensor | None = None,
                 object_threshold: float = 0.8, overlap_threshold: float = 0.8, max_detections: int = 100):
        """`outputs`: which predictions to make (OUTPUTS). `things` (bool [C], Categories.thing_mask()):
        the thing classes (default: every class); stuff never becomes an instance. Thresholds:
        Mask2Former's panoptic inference defaults."""
        unknown = set(outputs) - set(OUTPUTS)
        if unknown or not outputs:
            raise ValueError(f"outputs must be some of {OUTPUTS}, got {list(outputs)}")
        self.model, self.outputs = model, tuple(outputs)
        self.num_labels = int(model.config.num_labels)
        self.things = torch.ones(self.num_labels, dtype=torch.bool) if things is None else things.bool()
        self.object_threshold, self.overlap_threshold = object_threshold, overlap_threshold
        self.max_detections = max_detections

    def targets(self, batch: Batch) -> tuple[list[Tensor], list[Tensor]]:
        """(mask_labels, class_labels): float masks [M, H, W] at the padded size and int64 labels [M]."""
        device = batch.images.device
        masks, labels = [], []
        for sample in batch.targets:
            sample_masks, sample_labels = mask_targets(sample)
            masks.append(sample_masks.to(device, torch.float32))
            labels.append(sample_labels.to(device))
        return masks, labels

    def inputs(self, batch: Batch) -> dict[str, Any]:
        masks, labels = self.targets(batch)
        return {**self.image_inputs(batch), "mask_labels": masks, "class_labels": labels}

    def image_inputs(self, batch: Batch) -> dict[str, Any]:
        return {"pixel_values": batch.images, "pixel_mask": batch.pixel_mask.long()}

    def predictions(self, outputs: Any, batch: Batch) -> list[SegmentationPrediction]:
        class_probs = outputs.class_queries_logits.detach().float().softmax(-1)  # [B, Q, C+1]
        height, width = batch.images.shape[-2:]
        mask_logits = F.interpolate(outputs.masks_queries_logits.detach().float(), size=(height, width),
                                    mode="bilinear", align_corners=False)  # [B, Q, H, W]
        valid = batch.pixel_mask.bool()
        out = []
        for probs, logits, image_valid in zip(class_probs, mask_logits, valid):
            # padding belongs to no mask
            logits = logits.masked_fill(~image_valid, -torch.inf)
            prediction = SegmentationPrediction()
            if "panoptic" in self.outputs:
                prediction.panoptic, prediction.segment_labels = self.panoptic(probs, logits, image_valid)
            if "instance" in self.outputs:
                prediction.instances = self.instances(probs, logits)
            if "semantic" in self.outputs:
                prediction.semantic = torch.einsum("qc,qhw->chw", probs[:, :-1], logits.sigmoid()).argmax(0)
            out.append(prediction)
        return out

    def panoptic(self, probs: Tensor, logits: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One image: class probabilities [Q, C+1], mask logits [Q, H, W] and the image's own pixels
        (bool [H, W], False on padding) -> (index map, labels)."""
        scores, labels = probs.max(-1)
        keep = (labels != self.num_labels) & (scores > self.object_threshold)
        height, width = logits.shape[-2:]
        index_map = torch.zeros(height, width, dtype=torch.int32, device=logits.device)
        segment_labels: list[int] = []
        if not bool(keep.any()):
            return index_map, torch.zeros(0, dtype=torch.int64)
        scores, labels, mask_probs = scores[keep], labels[keep], logits[keep].sigmoid()
        owner = (scores.view(-1, 1, 1) * mask_probs).argmax(0)  # the query each pixel goes to
        if valid is not None:  # padding (probability 0 everywhere) would all go to query 0
            owner = owner.masked_fill(~valid, -1)
        own_masks = mask_probs >= 0.5
        stuff_segment: dict[int, int] = {}  # stuff label -> its segment's value in the map
        for query, label in enumerate(labels.tolist()):
            won = owner == query
            segment = won & own_masks[query]
            own_area, won_area = int(own_masks[query].sum()), int(won.sum())
            # the paper's test: the pixels the query won against its own mask's (probability >= 0.5)
            if own_area == 0 or not bool(segment.any()) or won_area / own_area < self.overlap_threshold:
                continue
            if not bool(self.things[label]) and label in stuff_segment:
                index_map[segment] = stuff_segment[label]
                continue
            segment_labels.append(label)
            index_map[segment] = len(segment_labels)
            if not bool(self.things[label]):
                stuff_segment[label] = len(segment_labels)
        return index_map, torch.tensor(segment_labels, dtype=torch.int64)

    def instances(self, probs: Tensor, logits: Tensor) -> Detections:
        """One image: the best (query, thing class) pairs with their masks, boxes and scores."""
        class_scores = probs[:, :-1].masked_fill(~self.things.to(probs.device), 0.0)  # [Q, C]
        count = min(self.max_detections, class_scores.numel())
        top, index = class_scores.flatten().topk(count)
        top, index = top[top > 0], index[top > 0]  # stuff pairs (score 0) are no detections
        queries, labels = index // self.num_labels, index % self.num_labels
        query_logits = logits[queries]
        masks = query_logits > 0
        mask_scores = (query_logits.sigmoid() * masks).flatten(1).sum(1) / masks.flatten(1).sum(1).clamp(min=1)
        return Detections(labels=labels.cpu(), boxes=masks_to_boxes(masks).cpu(), scores=(top * mask_scores).cpu(),
                          masks=masks.cpu())
