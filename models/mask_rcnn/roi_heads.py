"""The RoI heads (Fast R-CNN box head, He et al. 2017's mask head) and their losses.

Training: the ground-truth boxes join each image's proposals; `roi_batch_size_per_image` of them are
sampled (a quarter foreground at IoU >= 0.5); the box head pools each 7x7 from its pyramid level, two
FC layers of `box_head_dim`, then class logits (classes + background, the last) and per-class box
deltas. Loss: cross-entropy over the sampled boxes, smooth L1 on the foreground's deltas of their own
class over the sampled count. The mask head pools the foreground proposals 14x14, four 3x3 convs, a
2x deconvolution and one 28x28 mask logit per class; loss: binary cross-entropy of the ground-truth
class's mask against the matched object's mask read by RoIAlign at the proposal (28x28, > 0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from framework.vision.ops import (
    BoxCoder,
    Matcher,
    multiscale_roi_align,
    roi_align,
    sample_labels,
)

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # Fast R-CNN's delta scaling


class BoxHead(nn.Module):
    def __init__(self, channels: int, pool: int, width: int, num_labels: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels * pool * pool, width), nn.Linear(width, width)
        self.classifier = nn.Linear(width, num_labels + 1)  # the last class is background
        self.deltas = nn.Linear(width, 4 * num_labels)
        for layer in (self.fc1, self.fc2):  # Detectron2's FC init ("c2_xavier_fill")
            nn.init.kaiming_uniform_(layer.weight, a=1)
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.normal_(self.deltas.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)
        nn.init.zeros_(self.deltas.bias)

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        hidden = F.relu(self.fc2(F.relu(self.fc1(pooled.flatten(1)))))
        return self.classifier(hidden), self.deltas(hidden)


class MaskHead(nn.Module):
    def __init__(self, in_channels: int, channels: int, convs: int, num_labels: int):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(convs):
            layers += [nn.Conv2d(in_channels if index == 0 else channels, channels, 3, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.upsample = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.predictor = nn.Conv2d(channels, num_labels, 1)
        for layer in [*self.convs, self.upsample]:
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, pooled: Tensor) -> Tensor:
        """[K, C, 14, 14] -> mask logits [K, classes, 28, 28]."""
        return self.predictor(F.relu(self.upsample(self.convs(pooled))))


def with_batch_index(boxes: list[Tensor]) -> Tensor:
    """Per-image boxes -> [K, 5] rois (image index, x0, y0, x1, y1)."""
    index = torch.cat([torch.full((len(b), 1), float(i), dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)])
    return torch.cat([index, torch.cat(boxes)], dim=1)


class RoIHeads(nn.Module):
    def __init__(self, config, strides: list[int]):
        super().__init__()
        self.config, self.strides = config, strides[:4]  # P2-P5: P6 serves the RPN only
        self.box_head = BoxHead(config.fpn_channels, config.box_pool_size, config.box_head_dim, config.num_labels)
        self.mask_head = MaskHead(config.fpn_channels, config.mask_head_channels, config.mask_head_convs,
                                  config.num_labels)
        self.coder = BoxCoder(BOX_WEIGHTS)
        self.matcher = Matcher(config.roi_foreground_iou, config.roi_foreground_iou)

    def pool(self, features: list[Tensor], boxes: list[Tensor], size: int) -> Tensor:
        return multiscale_roi_align(features[:4], self.strides, with_batch_index(boxes), size,
                                    self.config.sampling_ratio)

    def sample(self, proposals: list[Tensor], targets: list[dict]) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Per image: the sampled boxes, their labels (num_labels = background) and matched objects
        (0 for background, which may have none to match: an image whose crop lost every object)."""
        boxes, labels, matched = [], [], []
        for image_proposals, target in zip(proposals, targets):
            candidates = torch.cat([image_proposals, target["boxes"].to(image_proposals.dtype)])
            matches = self.matcher(target["boxes"], candidates)
            positive, negative = sample_labels(matches, self.config.roi_batch_size_per_image,
                                               self.config.roi_positive_fraction)
            chosen = torch.cat([positive, negative])
            objects = matches[chosen].clamp(min=0)
            image_labels = target["class_labels"][objects] if len(target["boxes"]) else objects
            image_labels = image_labels.clone()
            image_labels[len(positive):] = self.config.num_labels
            boxes.append(candidates[chosen])
            labels.append(image_labels)
            matched.append(objects)
        return boxes, labels, matched

    def losses(self, features: list[Tensor], proposals: list[Tensor], targets: list[dict]) -> dict[str, Tensor]:
        boxes, labels, matched = self.sample(proposals, targets)
        logits, deltas = self.box_head(self.pool(features, boxes, self.config.box_pool_size))
        all_labels = torch.cat(labels)
        classification = F.cross_entropy(logits.float(), all_labels)
        foreground = torch.nonzero(all_labels < self.config.num_labels).view(-1)
        fg_labels = all_labels[foreground]
        truth = torch.cat([t["boxes"][m[keep < self.config.num_labels]] for t, m, keep in zip(targets, matched, labels)])
        regression = self.coder.encode(truth, torch.cat(boxes)[foreground])
        own_deltas = deltas.view(len(deltas), -1, 4)[foreground, fg_labels].float()
        box = F.smooth_l1_loss(own_deltas, regression, beta=self.config.smooth_l1_beta, reduction="sum")
        losses = {"loss_classifier": classification, "loss_box": box / max(len(all_labels), 1)}
        if all("masks" in t for t in targets):
            losses["loss_mask"] = self.mask_loss(features, boxes, labels, matched, targets)
        return losses

    def mask_loss(self, features: list[Tensor], boxes: list[Tensor], labels: list[Tensor], matched: list[Tensor],
                  targets: list[dict]) -> Tensor:
        fg = [image_labels < self.config.num_labels for image_labels in labels]
        fg_boxes = [b[keep] for b, keep in zip(boxes, fg)]
        if sum(len(b) for b in fg_boxes) == 0:  # no foreground: a zero that keeps the graph
            return self.mask_head.predictor.weight.sum() * 0.0
        logits = self.mask_head(self.pool(features, fg_boxes, self.config.mask_pool_size))
        size = logits.shape[-1]
        # each proposal reads its matched object's mask: per image, the objects are RoIAlign's batch
        mask_targets = []
        for target, objects, image_boxes in zip(targets, (m[keep] for m, keep in zip(matched, fg)), fg_boxes):
            rois = torch.cat([objects[:, None].float(), image_boxes.float()], dim=1)
            masks = target["masks"][:, None].float()
            mask_targets.append(roi_align(masks, rois, size, 1.0, 2)[:, 0] > 0.5)
        mask_targets = torch.cat(mask_targets)
        fg_labels = torch.cat([image_labels[keep] for image_labels, keep in zip(labels, fg)])
        own = logits[torch.arange(len(logits), device=logits.device), fg_labels].float()
        return F.binary_cross_entropy_with_logits(own, mask_targets.to(own.dtype))
