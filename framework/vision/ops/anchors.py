"""Anchors and how detectors pick training examples among them.

AnchorGenerator: for each feature level (its stride and anchor sizes) and aspect ratio, a box centred
on every feature-map cell, as Faster R-CNN's RPN places them (Ren et al. 2015; one size per FPN level,
Lin et al. 2017). Matcher: each anchor (or proposal) to its best ground-truth box, foreground above one
IoU, background below another, ignored between. sample_labels: a fixed-size, class-balanced subset of
the matched examples for the loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from framework.vision.ops.boxes import box_iou

BACKGROUND, IGNORED = -1, -2  # Matcher's answers for unmatched examples (match indices are >= 0)


class AnchorGenerator:
    """`sizes[level]`: the anchor sizes (square side in pixels) of that level; `aspect_ratios`: height /
    width ratios shared by every level. Anchors come out level by level, cell by cell (row-major), and
    within a cell ratio by ratio for each size: the order of an RPN head's outputs flattened the same way."""

    def __init__(self, sizes: list[list[float]], aspect_ratios: list[float]):
        self.sizes, self.aspect_ratios = sizes, aspect_ratios

    @property
    def per_cell(self) -> int:
        return len(self.sizes[0]) * len(self.aspect_ratios)

    def cell_anchors(self, level: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """[A, 4] anchors centred on (0, 0) with each size's area and each aspect ratio."""
        sizes = torch.tensor(self.sizes[level], dtype=dtype, device=device)
        ratios = torch.tensor(self.aspect_ratios, dtype=dtype, device=device)
        heights = (sizes[:, None] * torch.sqrt(ratios)[None, :]).reshape(-1)
        widths = (sizes[:, None] / torch.sqrt(ratios)[None, :]).reshape(-1)
        return torch.stack([-widths, -heights, widths, heights], dim=1) / 2

    def __call__(self, shapes: list[tuple[int, int]], strides: list[int], dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> list[Tensor]:
        """Per level, [H * W * A, 4] anchors for a feature map of `shapes[level]` at `strides[level]`:
        cell (i, j) is centred on pixel (j * stride, i * stride), the top-left corner of its patch."""
        out = []
        for level, ((height, width), stride) in enumerate(zip(shapes, strides)):
            ys = torch.arange(height, dtype=dtype, device=device) * stride
            xs = torch.arange(width, dtype=dtype, device=device) * stride
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            shifts = torch.stack([grid_x, grid_y, grid_x, grid_y], dim=-1).reshape(-1, 1, 4)
            out.append((shifts + self.cell_anchors(level, dtype, device)[None]).reshape(-1, 4))
        return out


class Matcher:
    """Match each example (anchor or proposal) to the ground-truth box it overlaps most: its index when
    IoU >= `high`, BACKGROUND when < `low`, IGNORED between. With `allow_low_quality`, every ground-truth
    box also keeps the examples it overlaps most, however little (the RPN's rule, so small objects get
    anchors)."""

    def __init__(self, high: float, low: float, allow_low_quality: bool = False):
        self.high, self.low, self.allow_low_quality = high, low, allow_low_quality

    def __call__(self, ground_truth: Tensor, examples: Tensor) -> Tensor:
        if len(ground_truth) == 0:
            return torch.full((len(examples),), BACKGROUND, dtype=torch.int64, device=examples.device)
        iou = box_iou(ground_truth, examples)  # [G, N]
        best, matches = iou.max(0)
        result = matches.clone()
        result[best < self.high] = IGNORED
        result[best < self.low] = BACKGROUND
        if self.allow_low_quality:
            best_per_truth = iou.max(1, keepdim=True).values
            # the ties included: every example as good as the best for some ground-truth box
            ties = torch.nonzero((iou == best_per_truth) & (best_per_truth > 0))[:, 1]
            result[ties] = matches[ties]
        return result


def sample_labels(matches: Tensor, count: int, positive_fraction: float,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(positive, negative) indices: at most `count * positive_fraction` matched examples and enough
    background ones to make `count`, each drawn at random without replacement."""
    positive = torch.nonzero(matches >= 0).view(-1)
    negative = torch.nonzero(matches == BACKGROUND).view(-1)
    positives = min(len(positive), int(count * positive_fraction))
    negatives = min(len(negative), count - positives)

    def draw(indices: Tensor, k: int) -> Tensor:
        order = torch.randperm(len(indices), device=indices.device if generator is None else "cpu",
                               generator=generator)
        return indices[order[:k].to(indices.device)]

    return draw(positive, positives), draw(negative, negatives)
