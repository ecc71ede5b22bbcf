"""Non-maximum suppression, exact and without a Python loop over boxes.

Greedy NMS keeps the best box, drops every box overlapping it by more than the threshold, and goes on
with the next kept box. Whether box j is kept depends only on the kept boxes scoring above it, so with
S[i, j] = "i scores above j and overlaps it", the kept set is the one fixed point of
keep[j] = not any(S[i, j] and keep[i]). Iterating that equation from "all kept" settles one more rank
of the suppression chain each time and stops when nothing changes: the same answer as the greedy loop,
in as many [N, N] tensor passes as the longest chain of boxes suppressing each other (a handful in
practice), instead of N Python steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from framework.vision.ops.boxes import box_iou


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (int64, by decreasing score) of the boxes greedy NMS keeps; ties keep the earlier box."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    suppresses = (box_iou(sorted_boxes, sorted_boxes) > iou_threshold).triu_(diagonal=1)
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    while True:
        # a box stays when no kept box above it suppresses it (the kept rows only: fewer than all)
        new_keep = ~suppresses[keep].any(0)
        if torch.equal(new_keep, keep):
            return order[keep]
        keep = new_keep


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float, max_joint: int = 2000) -> Tensor:
    """NMS within each group (class, image or feature level), indices by decreasing score. Up to
    `max_joint` boxes go through one NMS, each group's boxes shifted to their own region of the plane so
    boxes of different groups never overlap; more boxes are suppressed group by group, since the
    pairwise matrix of all of them grows with the square of their total (an RPN's 5 x 2000 proposals:
    5 matrices of 2000^2 instead of one of 10000^2)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    if len(boxes) <= max_joint:
        span = (boxes.max() - boxes.min()).to(boxes.dtype) + 1
        shifted = boxes - boxes.min() + (groups.to(boxes.dtype) * span)[:, None]
        return nms(shifted, scores, iou_threshold)
    kept = []
    for group in torch.unique(groups):
        members = torch.nonzero(groups == group).view(-1)
        kept.append(members[nms(boxes[members], scores[members], iou_threshold)])
    kept = torch.cat(kept)
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]
