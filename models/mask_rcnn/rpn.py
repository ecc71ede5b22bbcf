"""The region proposal network (Ren et al. 2015, with FPN: Lin et al. 2017).

One head shared by every pyramid level: a 3x3 conv, then per anchor an objectness logit and four box
deltas. Proposals: per image and level the `pre_nms_top_n` best anchors, decoded and clipped to the
image, small ones dropped, NMS per level, then the `post_nms_top_n` best over all levels. Loss:
`batch_size_per_image` anchors sampled per image (at most half foreground), binary cross-entropy on
their objectness and smooth L1 on the foreground's deltas, both over the sampled count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from framework.vision.ops import (
    AnchorGenerator,
    BoxCoder,
    Matcher,
    batched_nms,
    clip_boxes,
    remove_small_boxes,
    sample_labels,
)


class RPNHead(nn.Module):
    def __init__(self, channels: int, anchors_per_cell: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.objectness = nn.Conv2d(channels, anchors_per_cell, 1)
        self.deltas = nn.Conv2d(channels, 4 * anchors_per_cell, 1)
        for layer in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level, objectness [B, H*W*A] and deltas [B, H*W*A, 4] in the anchors' order."""
        logits, deltas = [], []
        for feature in features:
            hidden = F.relu(self.conv(feature))
            logits.append(self.objectness(hidden).permute(0, 2, 3, 1).flatten(1))
            batch, _, height, width = hidden.shape
            delta = self.deltas(hidden).view(batch, -1, 4, height, width)
            deltas.append(delta.permute(0, 3, 4, 1, 2).reshape(batch, -1, 4))
        return logits, deltas


class RegionProposalNetwork(nn.Module):
    def __init__(self, config, strides: list[int]):
        super().__init__()
        self.config, self.strides = config, strides
        self.anchor_generator = AnchorGenerator([[s] for s in config.anchor_sizes], config.aspect_ratios)
        self.head = RPNHead(config.fpn_channels, self.anchor_generator.per_cell)
        self.coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(config.rpn_foreground_iou, config.rpn_background_iou, allow_low_quality=True)

    def forward(self, features: list[Tensor], image_sizes: Tensor, targets: list[dict] | None = None
                ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """(proposals per image [P, 4], losses: empty without targets)."""
        logits, deltas = self.head(features)
        # float32 whatever the features' precision: anchors are pixel coordinates
        anchors = self.anchor_generator([f.shape[-2:] for f in features], self.strides, torch.float32,
                                        features[0].device)
        proposals = self.proposals(logits, deltas, anchors, image_sizes)
        losses = {}
        if targets is not None:
            losses = self.losses(torch.cat(logits, 1), torch.cat(deltas, 1), torch.cat(anchors), targets)
        return proposals, losses

    @torch.no_grad()
    def proposals(self, logits: list[Tensor], deltas: list[Tensor], anchors: list[Tensor], image_sizes: Tensor
                  ) -> list[Tensor]:
        training = self.training
        pre = self.config.rpn_pre_nms_top_n_train if training else self.config.rpn_pre_nms_top_n_test
        post = self.config.rpn_post_nms_top_n_train if training else self.config.rpn_post_nms_top_n_test
        scores, boxes, levels = [], [], []
        for level, (level_logits, level_deltas, level_anchors) in enumerate(zip(logits, deltas, anchors)):
            top = level_logits.float().topk(min(pre, level_logits.shape[1]), dim=1)  # [B, k]
            chosen = torch.gather(level_deltas, 1, top.indices[..., None].expand(-1, -1, 4))
            decoded = self.coder.decode(chosen.reshape(-1, 4), level_anchors[top.indices.reshape(-1)])
            boxes.append(decoded.view(*top.indices.shape, 4))
            scores.append(top.values)
            levels.append(torch.full_like(top.indices, level))
        scores, boxes, levels = torch.cat(scores, 1), torch.cat(boxes, 1), torch.cat(levels, 1)
        out = []
        for image_scores, image_boxes, image_levels, (height, width) in zip(scores, boxes, levels, image_sizes.tolist()):
            image_boxes = clip_boxes(image_boxes, height, width)
            keep = remove_small_boxes(image_boxes, 1e-3)
            image_boxes, image_scores, image_levels = image_boxes[keep], image_scores[keep], image_levels[keep]
            keep = batched_nms(image_boxes, image_scores, image_levels, self.config.rpn_nms_threshold)[:post]
            out.append(image_boxes[keep])
        return out

    def losses(self, logits: Tensor, deltas: Tensor, anchors: Tensor, targets: list[dict]) -> dict[str, Tensor]:
        chosen, labels, regression, positives = [], [], [], []
        for image, target in enumerate(targets):
            matches = self.matcher(target["boxes"], anchors)
            positive, negative = sample_labels(matches, self.config.rpn_batch_size_per_image,
                                               self.config.rpn_positive_fraction)
            indices = torch.cat([positive, negative])
            chosen.append(image * len(anchors) + indices)
            labels.append(torch.cat([torch.ones_like(positive), torch.zeros_like(negative)]).to(logits.dtype))
            positives.append(image * len(anchors) + positive)
            regression.append(self.coder.encode(target["boxes"][matches[positive]], anchors[positive]))
        chosen, positives = torch.cat(chosen), torch.cat(positives)
        objectness = F.binary_cross_entropy_with_logits(logits.reshape(-1)[chosen].float(), torch.cat(labels).float(),
                                                        reduction="sum")
        box = F.smooth_l1_loss(deltas.reshape(-1, 4)[positives].float(), torch.cat(regression),
                               beta=self.config.smooth_l1_beta, reduction="sum")
        count = max(len(chosen), 1)
        return {"loss_rpn_objectness": objectness / count, "loss_rpn_box": box / count}
