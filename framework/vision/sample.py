"""One image with all of its targets (Sample); batches of them are collate.py's.

Every reader returns a Sample and every transform takes and returns one, so an image, its boxes, its
instance masks and its panoptic or semantic map are always moved together. Coordinates are pixels of
the current image; `orig_size` remembers the size on disk so predictions can be scaled back.

Object conventions (N objects or segments, the same order in every per-object tensor):

- `labels[i]`: contiguous label (0..C-1) of object i, see categories.py.
- `iscrowd[i]`: True for a crowd region (COCO's iscrowd=1): not an object to detect, ignored when
  scoring and left out of training targets.
- `boxes[i]`: (x0, y0, x1, y1) in pixels, x1/y1 exclusive edges (a one-pixel object at column 3 spans
  3..4).
- `masks[i]`: instance mask, bool. Instance datasets carry these (they may overlap).
- `panoptic`: int32 map, 0 = void (unlabelled or padding), k = object k-1. Panoptic datasets carry this
  instead of `masks`: one map moves faster than N masks, and it cannot overlap.
- `semantic`: int64 map of labels, IGNORE_LABEL where nothing is to be scored (void, crowd, padding).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor

# The label of pixels that are not scored and not trained on: void, crowd regions and padding. 255 is
# what semantic-segmentation losses ignore by default (e.g. SegFormer's semantic_loss_ignore_index).
IGNORE_LABEL = 255


def _empty_labels() -> Tensor:
    return torch.zeros(0, dtype=torch.int64)


def _empty_flags() -> Tensor:
    return torch.zeros(0, dtype=torch.bool)


@dataclass
class Sample:
    """One image and its targets; unused targets are None. See the module docstring for conventions."""

    image: Tensor | None                 # [3, H, W] uint8 until Normalize, float32 after
    image_id: int | str = -1             # as the dataset's files give it (COCO: int, Cityscapes: str)
    orig_size: tuple[int, int] = (0, 0)  # (height, width) of the image on disk
    labels: Tensor = field(default_factory=_empty_labels)   # [N] int64
    iscrowd: Tensor = field(default_factory=_empty_flags)   # [N] bool
    boxes: Tensor | None = None          # [N, 4] float32, xyxy pixels
    masks: Tensor | None = None          # [N, H, W] bool
    panoptic: Tensor | None = None       # [H, W] int32, 0 = void, k = object k-1
    semantic: Tensor | None = None       # [H, W] int64 labels, IGNORE_LABEL = not scored
    valid: Tensor | None = None          # [H, W] bool, False on padding; None = every pixel is image

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image and of every map."""
        for tensor in (self.image, self.panoptic, self.semantic, self.valid):
            if tensor is not None:
                return int(tensor.shape[-2]), int(tensor.shape[-1])
        if self.masks is not None:
            return int(self.masks.shape[-2]), int(self.masks.shape[-1])
        raise ValueError("a Sample without an image or a map has no size")

    def replace(self, **changes) -> Sample:
        return dataclasses.replace(self, **changes)

    def select(self, keep: Tensor) -> Sample:
        """The same sample with only the objects where `keep` (bool [N]) is True. A panoptic map is
        renumbered so that k still means object k-1; dropped objects' pixels become void."""
        if bool(keep.all()):
            return self
        changes = dict(labels=self.labels[keep], iscrowd=self.iscrowd[keep])
        if self.boxes is not None:
            changes["boxes"] = self.boxes[keep]
        if self.masks is not None:
            changes["masks"] = self.masks[keep]
        if self.panoptic is not None:
            lookup = torch.zeros(len(keep) + 1, dtype=torch.int32)
            lookup[1:][keep] = torch.arange(1, int(keep.sum()) + 1, dtype=torch.int32)
            changes["panoptic"] = lookup[self.panoptic]
        return self.replace(**changes)


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight boxes (x0, y0, x1, y1) of bool masks [N, H, W], with exclusive x1/y1; empty masks give zeros."""
    if masks.shape[0] == 0:
        return torch.zeros(0, 4, dtype=torch.float32)
    return _boxes_from_projections(masks.any(dim=2), masks.any(dim=1))


def panoptic_to_boxes(panoptic: Tensor, count: int) -> Tensor:
    """Tight boxes of the `count` objects of a panoptic map (zeros for objects with no pixel left),
    without building one mask per object."""
    if count == 0:
        return torch.zeros(0, 4, dtype=torch.float32)
    height, width = panoptic.shape
    index = panoptic.to(torch.int64)
    # object k occupies row y if some pixel of row y has value k (row 0 of the result is void)
    rows = torch.zeros(count + 1, height, dtype=torch.bool)
    rows[index, torch.arange(height).view(-1, 1).expand(height, width)] = True
    cols = torch.zeros(count + 1, width, dtype=torch.bool)
    cols[index, torch.arange(width).view(1, -1).expand(height, width)] = True
    return _boxes_from_projections(rows[1:], cols[1:])


def _boxes_from_projections(rows: Tensor, cols: Tensor) -> Tensor:
    """Boxes from per-object row and column occupancy ([N, H] and [N, W] bool)."""
    height, width = rows.shape[1], cols.shape[1]
    # argmax finds the first True; on the reversed axis it finds the last one
    y0, x0 = rows.to(torch.uint8).argmax(1), cols.to(torch.uint8).argmax(1)
    y1 = height - rows.flip(1).to(torch.uint8).argmax(1)
    x1 = width - cols.flip(1).to(torch.uint8).argmax(1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)
    boxes[~rows.any(1)] = 0.0
    return boxes
