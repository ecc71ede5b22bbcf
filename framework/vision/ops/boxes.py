"""Boxes as float [N, 4] (x0, y0, x1, y1) in pixels: areas, IoU, clipping, and the box coder that turns
a box into regression targets relative to a reference box and back (Girshick et al. 2014, R-CNN's
parameterisation: centre offsets in units of the reference's size, log size ratios)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(first: Tensor, second: Tensor) -> Tensor:
    """[N, M] intersection over union of every pair (0 where both boxes are empty). Written per
    coordinate with in-place steps: [N, M, 2] corner tensors and a reduction over their last axis take
    about three times as long for thousands of boxes (NMS's cost)."""
    width = torch.minimum(first[:, None, 2], second[None, :, 2])
    width.sub_(torch.maximum(first[:, None, 0], second[None, :, 0])).clamp_(min=0)
    height = torch.minimum(first[:, None, 3], second[None, :, 3])
    height.sub_(torch.maximum(first[:, None, 1], second[None, :, 1])).clamp_(min=0)
    inter = width.mul_(height)
    union = (box_area(first)[:, None] + box_area(second)[None, :]).sub_(inter)
    return inter.div_(union.clamp_(min=torch.finfo(union.dtype).tiny))


def clip_boxes(boxes: Tensor, height: int | Tensor, width: int | Tensor) -> Tensor:
    """Boxes clipped to the image [0, width] x [0, height] (a new tensor)."""
    x = boxes[..., 0::2].clamp(min=0)
    y = boxes[..., 1::2].clamp(min=0)
    x = torch.minimum(x, torch.as_tensor(width, dtype=boxes.dtype, device=boxes.device))
    y = torch.minimum(y, torch.as_tensor(height, dtype=boxes.dtype, device=boxes.device))
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes at least `min_size` wide and high."""
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    return torch.nonzero(keep).view(-1)


class BoxCoder:
    """encode(targets, references) -> deltas [N, 4] and decode(deltas, references) -> boxes, inverse to
    each other. `weights` scale the four deltas (Fast R-CNN's box head: 10, 10, 5, 5, so the targets
    have about unit variance); decoding clamps the log size ratios at log(1000 / 16) so a wild delta
    cannot overflow exp (the clamp of Detectron and torchvision). Both work in float32 whatever the
    inputs' dtype: pixel coordinates in bfloat16 (8 bits of mantissa) would be off by pixels."""

    def __init__(self, weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
                 clamp: float = math.log(1000.0 / 16)):
        self.weights, self.clamp = tuple(float(w) for w in weights), clamp

    @staticmethod
    def _centre_size(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        return boxes[:, 0] + 0.5 * width, boxes[:, 1] + 0.5 * height, width, height

    def encode(self, targets: Tensor, references: Tensor) -> Tensor:
        wx, wy, ww, wh = self.weights
        tx, ty, tw, th = self._centre_size(targets.float())
        rx, ry, rw, rh = self._centre_size(references.float())
        return torch.stack([wx * (tx - rx) / rw, wy * (ty - ry) / rh,
                            ww * torch.log(tw / rw), wh * torch.log(th / rh)], dim=1)

    def decode(self, deltas: Tensor, references: Tensor) -> Tensor:
        """`deltas` [N, 4 * k] (k boxes per reference, e.g. one per class) -> boxes [N, 4 * k]."""
        wx, wy, ww, wh = self.weights
        deltas, references = deltas.float(), references.float()
        rx, ry, rw, rh = (v[:, None] for v in self._centre_size(references))
        dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy
        dw = (deltas[:, 2::4] / ww).clamp(max=self.clamp)
        dh = (deltas[:, 3::4] / wh).clamp(max=self.clamp)
        cx, cy = dx * rw + rx, dy * rh + ry
        half_w, half_h = 0.5 * torch.exp(dw) * rw, 0.5 * torch.exp(dh) * rh
        return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=2).flatten(1)
