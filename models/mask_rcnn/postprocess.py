"""Inference: Mask R-CNN's detections from the RoI heads' outputs (He et al. 2017, Sec. 3.1).

Per image: each proposal's per-class boxes are decoded and clipped; every (proposal, class) pair with
softmax score >= `box_score_threshold` is a candidate; NMS at `box_nms_threshold` per class; the
`detections_per_image` best stay. The mask head then runs on those boxes only, and each box's mask
of its class (28x28 probabilities) is pasted into the image: resampled bilinearly onto the pixels the
box covers (one grid_sample for all boxes), 0 elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from framework.vision.ops import batched_nms, clip_boxes, remove_small_boxes


def detect(config, coder, logits: Tensor, deltas: Tensor, proposals: list[Tensor], image_sizes: Tensor
           ) -> list[tuple[Tensor, Tensor, Tensor]]:
    """(boxes [N, 4], scores [N], labels [N]) per image from the box head's outputs on `proposals`."""
    classes = config.num_labels
    probabilities = logits.float().softmax(-1)[:, :classes]
    boxes = coder.decode(deltas, torch.cat(proposals)).view(len(deltas), classes, 4)
    out = []
    for image_probs, image_boxes, (height, width) in zip(probabilities.split([len(p) for p in proposals]),
                                                        boxes.split([len(p) for p in proposals]), image_sizes.tolist()):
        image_boxes = clip_boxes(image_boxes, height, width).reshape(-1, 4)
        scores = image_probs.reshape(-1)
        labels = torch.arange(classes, device=scores.device).repeat(len(image_probs))
        keep = torch.nonzero(scores >= config.box_score_threshold).view(-1)
        keep = keep[remove_small_boxes(image_boxes[keep], 1e-2)]
        image_boxes, scores, labels = image_boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(image_boxes, scores, labels, config.box_nms_threshold)[: config.detections_per_image]
        out.append((image_boxes[keep], scores[keep], labels[keep]))
    return out


def paste_masks(masks: Tensor, boxes: Tensor, height: int, width: int, chunk: int = 16) -> Tensor:
    """Mask probabilities [N, S, S] in box coordinates -> [N, height, width] in the image: pixel (y, x)
    of box b reads b's mask at the position of the pixel's centre inside the box (bilinear, 0 outside).
    `chunk` boxes at a time: the sampling grid of 100 boxes on a 1333x800 image would take 850 MB."""
    if len(masks) > chunk:
        return torch.cat([paste_masks(masks[i:i + chunk], boxes[i:i + chunk], height, width, chunk)
                          for i in range(0, len(masks), chunk)])
    if len(masks) == 0:
        return masks.new_zeros(0, height, width)
    x0, y0, x1, y1 = (v[:, None] for v in boxes.to(masks.dtype).unbind(1))
    xs = torch.arange(width, device=masks.device, dtype=masks.dtype) + 0.5
    ys = torch.arange(height, device=masks.device, dtype=masks.dtype) + 0.5
    # grid_sample's [-1, 1] spans the mask's outer edges (align_corners=False), as the box's edges
    gx = (xs[None] - x0) / (x1 - x0).clamp(min=1e-6) * 2 - 1  # [N, W]
    gy = (ys[None] - y0) / (y1 - y0).clamp(min=1e-6) * 2 - 1  # [N, H]
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(masks[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
