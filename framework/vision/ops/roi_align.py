"""RoIAlign (He et al. 2017): a fixed-size feature grid for each box, read by bilinear interpolation
without rounding the box to the feature grid, and its multi-level form for feature pyramids.

Semantics are those of the reference implementations with `aligned=True` (Detectron2, torchvision):
a box in image pixels is scaled by `spatial_scale` and shifted by half a pixel, so pixel i's centre
is at i; each of the output_size bins averages sampling_ratio x sampling_ratio evenly spaced bilinear
samples; a sample more than one pixel outside the map reads 0, one within a pixel of the border reads
the border value. (The references' sampling_ratio <= 0, a sample count adapted to each box's size,
is not supported: it cannot be vectorised; Mask R-CNN's FPN heads use 2.)

Vectorised with `grid_sample`: the boxes of each image are laid out as rows of one sampling grid over
that image's feature map (padded to the image with the most boxes), so there is one call per feature
level and no copy of the feature map per box. Gradients flow to the features through autograd (not to
the boxes, as in the references).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _sample_points(rois: Tensor, size: tuple[int, int], scale: float, ratio: int, aligned: bool) -> tuple[Tensor, Tensor]:
    """The x [K, W*r] and y [K, H*r] feature-map coordinates of every sample of every box."""
    offset = 0.5 if aligned else 0.0
    x0, y0 = rois[:, 1] * scale - offset, rois[:, 2] * scale - offset
    x1, y1 = rois[:, 3] * scale - offset, rois[:, 4] * scale - offset
    width, height = x1 - x0, y1 - y0
    if not aligned:  # the legacy form forces boxes to at least one pixel
        width, height = width.clamp(min=1.0), height.clamp(min=1.0)
    out_h, out_w = size
    steps_h = (torch.arange(out_h * ratio, device=rois.device, dtype=rois.dtype) + 0.5) / (out_h * ratio)
    steps_w = (torch.arange(out_w * ratio, device=rois.device, dtype=rois.dtype) + 0.5) / (out_w * ratio)
    return x0[:, None] + width[:, None] * steps_w, y0[:, None] + height[:, None] * steps_h


def roi_align(features: Tensor, rois: Tensor, output_size: int | tuple[int, int], spatial_scale: float = 1.0,
              sampling_ratio: int = 2, aligned: bool = True) -> Tensor:
    """`features` [B, C, H, W], `rois` [K, 5] (image index, x0, y0, x1, y1 in image pixels) ->
    [K, C, out_h, out_w]. Computed in float32 (as the references do under mixed precision: sample
    positions in bfloat16 would be off by pixels), returned in the features' dtype."""
    if sampling_ratio <= 0:
        raise ValueError(f"sampling_ratio must be positive, got {sampling_ratio} (adaptive sampling is not supported)")
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    count, channels = len(rois), features.shape[1]
    if count == 0:
        return features.new_zeros(0, channels, *size)
    height, width = features.shape[-2:]
    dtype, features = features.dtype, features.float()
    rois = rois.detach().float()
    xs, ys = _sample_points(rois, size, spatial_scale, sampling_ratio, aligned)  # [K, Wr], [K, Hr]
    # samples more than a pixel outside the map read 0; the rest read the border when outside it
    inside = ((ys >= -1) & (ys <= height))[:, :, None] & ((xs >= -1) & (xs <= width))[:, None, :]
    # grid_sample with align_corners=True puts -1 and 1 on the first and last pixel centres, and
    # padding_mode="border" clamps to them: the references' clamping inside that one-pixel band
    gx = xs.clamp(0, width - 1) * (2.0 / max(width - 1, 1)) - 1.0
    gy = ys.clamp(0, height - 1) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # [K, Hr, Wr, 2]
    batch_index = rois[:, 0].long()
    per_image = torch.bincount(batch_index, minlength=features.shape[0])
    rows = int(per_image.max())
    # each box's row in its image's grid: its rank among the boxes of that image
    order = torch.argsort(batch_index, stable=True)
    starts = torch.cumsum(per_image, 0) - per_image
    slot = torch.empty_like(batch_index)
    slot[order] = torch.arange(count, device=rois.device) - starts[batch_index[order]]
    grid_h, grid_w = grid.shape[1:3]
    layout = grid.new_zeros(features.shape[0], rows, grid_h, grid_w, 2)
    layout[batch_index, slot] = grid
    sampled = F.grid_sample(features, layout.view(features.shape[0], rows * grid_h, grid_w, 2), mode="bilinear",
                            padding_mode="border", align_corners=True)  # [B, C, rows*Hr, Wr]
    sampled = sampled.view(features.shape[0], channels, rows, grid_h, grid_w)[batch_index, :, slot]  # [K, C, Hr, Wr]
    sampled = sampled * inside[:, None].to(sampled.dtype)
    return F.avg_pool2d(sampled, kernel_size=sampling_ratio, stride=sampling_ratio).to(dtype)


def level_of_boxes(boxes: Tensor, min_level: int, max_level: int, canonical_size: float = 224.0,
                   canonical_level: int = 4) -> Tensor:
    """The FPN level of each box (Lin et al. 2017, Eq. 1): k = floor(4 + log2(sqrt(area) / 224)),
    clamped to the pyramid's levels; returned as an index from 0 (min_level)."""
    scale = torch.sqrt(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0))
    level = torch.floor(canonical_level + torch.log2(scale / canonical_size + 1e-8))
    return (level.clamp(min_level, max_level) - min_level).long()


def multiscale_roi_align(features: list[Tensor], strides: list[int], rois: Tensor, output_size: int,
                         sampling_ratio: int = 2) -> Tensor:
    """RoIAlign of each box on the pyramid level its size selects (`features` from the finest level,
    each level's stride in `strides`, powers of two): [K, C, output_size, output_size]."""
    levels = [round(math.log2(s)) for s in strides]
    assigned = level_of_boxes(rois[:, 1:], levels[0], levels[-1])
    out = features[0].new_zeros(len(rois), features[0].shape[1], output_size, output_size)
    for index, (feature, stride) in enumerate(zip(features, strides)):
        chosen = torch.nonzero(assigned == index).view(-1)
        if len(chosen):
            out[chosen] = roi_align(feature, rois[chosen], output_size, 1.0 / stride, sampling_ratio)
    return out
