"""What a model's loss needs, built from a (transformed) Sample.

Crowd regions and void pixels are never training targets: mask-classification models (Mask2Former)
get one binary mask per non-crowd object that still has pixels; semantic maps carry IGNORE_LABEL there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from framework.vision.sample import IGNORE_LABEL, Sample, masks_to_boxes, panoptic_to_boxes


def present_objects(sample: Sample) -> Tensor:
    """bool [N]: the objects that still have pixels (a crop can remove objects of a panoptic map)."""
    count = len(sample.labels)
    if sample.panoptic is not None:
        area = torch.bincount(sample.panoptic.reshape(-1), minlength=count + 1)[1:]
        return area > 0
    if sample.masks is not None:
        return sample.masks.flatten(1).any(1)
    return torch.ones(count, dtype=torch.bool)


def mask_targets(sample: Sample, things_only: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(masks bool [M, H, W], labels int64 [M]) of the non-crowd objects that have pixels, in object
    order: Mask2Former's `mask_labels` / `class_labels` for panoptic (every segment) or instance
    segmentation (pass `things_only`, bool [C] from `Categories.thing_mask()`, to keep thing classes)."""
    wanted = ~sample.iscrowd
    if things_only is not None:
        wanted &= things_only[sample.labels]
    if sample.masks is not None:
        keep = wanted & present_objects(sample)
        return sample.masks[keep], sample.labels[keep]
    if sample.panoptic.device.type != "cpu":
        keep = wanted & present_objects(sample)
        # k+1 is object k's value in the panoptic map
        values = torch.nonzero(keep).view(-1, 1, 1).to(sample.panoptic.dtype) + 1
        return sample.panoptic.unsqueeze(0) == values, sample.labels[keep]
    return _panoptic_masks_cpu(sample, wanted)


def _panoptic_masks_cpu(sample: Sample, wanted: Tensor) -> tuple[Tensor, Tensor]:
    """`mask_targets` of a panoptic map on the CPU: numpy compares the map with each wanted object's
    value, written straight into that object's row (about 7x faster than torch's `==`, and faster than
    one scatter of the map at any number of objects), and an object that a crop removed is found by
    its empty row (`any` stops at the first pixel; counting the map's values first takes a pass as
    long as ten comparisons), whose row is then reused."""
    panoptic = sample.panoptic.numpy()
    candidates = (torch.nonzero(wanted).view(-1) + 1).tolist()  # k+1 is object k's value in the map
    masks = np.empty((len(candidates), *panoptic.shape), dtype=bool)
    kept = []
    for value in candidates:
        row = masks[len(kept)]
        np.equal(panoptic, value, out=row)
        if row.any():
            kept.append(value - 1)
    index = torch.tensor(kept, dtype=torch.int64)
    return torch.from_numpy(masks[: len(kept)]), sample.labels[index]


def semantic_target(sample: Sample) -> Tensor:
    """int64 [H, W] labels with IGNORE_LABEL on void, crowd and padding: the sample's own semantic map
    (ADE20K) or the one its panoptic map implies (COCO panoptic as semantic segmentation)."""
    if sample.semantic is not None:
        semantic = sample.semantic
    else:
        # lookup[k] is the label of the panoptic value k: void (0) and crowd objects are ignored
        lookup = torch.full((len(sample.labels) + 1,), IGNORE_LABEL, dtype=torch.int64)
        lookup[1:] = torch.where(sample.iscrowd, IGNORE_LABEL, sample.labels)
        semantic = lookup[sample.panoptic]
    if sample.valid is not None:
        semantic = semantic.masked_fill(~sample.valid, IGNORE_LABEL)
    return semantic


def box_targets(sample: Sample) -> tuple[Tensor, Tensor]:
    """(boxes float32 [M, 4] xyxy pixels, labels int64 [M]) of the non-crowd objects that have pixels;
    boxes come from the masks or the panoptic map when the sample has none of its own."""
    boxes = sample.boxes
    if boxes is None:
        boxes = masks_to_boxes(sample.masks) if sample.masks is not None else panoptic_to_boxes(
            sample.panoptic, len(sample.labels))
    keep = present_objects(sample) & ~sample.iscrowd & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], sample.labels[keep]


def to_cxcywh(boxes: Tensor, height: int, width: int) -> Tensor:
    """xyxy pixel boxes -> (centre x, centre y, width, height) as fractions of (width, height): the box
    format of the DETR family's losses."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    out = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)
    return out / torch.tensor([width, height, width, height], dtype=out.dtype)
