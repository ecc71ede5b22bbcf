"""Mask R-CNN (He et al. 2017) as transformers models: ResNet-FPN features, region proposals, and box
and mask heads on RoIAlign features (fpn.py, rpn.py, roi_heads.py, postprocess.py).

    model(pixel_values, pixel_mask=None, labels=None) -> MaskRCNNOutput

`labels`: per image a dict of `boxes` (float [M, 4] xyxy in pixels of `pixel_values`), `class_labels`
(int64 [M]) and, to train the mask head, `masks` (bool [M, H, W] at the input's size). With labels the
output has `.loss` (the sum of the RPN's, box head's and mask head's losses, each also returned);
in eval mode it also has the detections: per image `pred_boxes`, `pred_scores`, `pred_labels` and
`pred_masks` (probabilities [N, H, W] pasted at the input's size). `pixel_mask` (1 on image pixels,
padding at the bottom and right) clips proposals and detections to each image's own part.

MaskRCNNForObjectDetection and MaskRCNNForInstanceSegmentation are the same network (a checkpoint of
one loads into the other); the detection one is trained on boxes alone when its labels have no masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration import MaskRCNNConfig
from .fpn import BackboneWithPyramid
from .postprocess import detect, paste_masks
from .roi_heads import RoIHeads
from .rpn import RegionProposalNetwork


@dataclass
class MaskRCNNOutput(ModelOutput):
    loss: Tensor | None = None
    loss_dict: dict[str, Tensor] | None = None
    pred_boxes: list[Tensor] | None = None
    pred_scores: list[Tensor] | None = None
    pred_labels: list[Tensor] | None = None
    pred_masks: list[Tensor] | None = None


def image_sizes(pixel_values: Tensor, pixel_mask: Tensor | None) -> Tensor:
    """int64 [B, 2] (height, width) of each image's own part."""
    if pixel_mask is None:
        batch, _, height, width = pixel_values.shape
        return torch.tensor([[height, width]] * batch, device=pixel_values.device)
    mask = pixel_mask.bool()
    return torch.stack([mask.any(2).sum(1), mask.any(1).sum(1)], dim=1)


class MaskRCNNPreTrainedModel(PreTrainedModel):
    config_class = MaskRCNNConfig
    base_model_prefix = "mask_rcnn"
    main_input_name = "pixel_values"

    def _init_weights(self, module):  # each head initialises its own layers (their papers' schemes)
        pass


class MaskRCNNModel(MaskRCNNPreTrainedModel):
    def __init__(self, config: MaskRCNNConfig):
        super().__init__(config)
        self.backbone = BackboneWithPyramid(config)
        self.rpn = RegionProposalNetwork(config, self.backbone.strides)
        self.roi_heads = RoIHeads(config, self.backbone.strides)
        self.post_init()

    def train(self, mode: bool = True):
        """Detectron2's frozen batch norm when `freeze_backbone_batch_norm`: the backbone's statistics
        stay those it was loaded with (batches of 2 images per GPU are too small to estimate them)."""
        super().train(mode)
        if self.config.freeze_backbone_batch_norm:
            for module in self.backbone.body.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, pixel_values: Tensor, pixel_mask: Tensor | None = None, labels: list[dict] | None = None,
                **kwargs) -> MaskRCNNOutput:
        sizes = image_sizes(pixel_values, pixel_mask)
        features = self.backbone(pixel_values)
        proposals, losses = self.rpn(features, sizes, labels)
        output = MaskRCNNOutput()
        if labels is not None:
            losses.update(self.roi_heads.losses(features, proposals, labels))
            output.loss, output.loss_dict = sum(losses.values()), losses
        if not self.training:
            self.detect(output, features, proposals, sizes, pixel_values.shape[-2:])
        return output

    @torch.no_grad()
    def detect(self, output: MaskRCNNOutput, features: list[Tensor], proposals: list[Tensor], sizes: Tensor,
               padded: tuple[int, int]) -> None:
        heads, config = self.roi_heads, self.config
        logits, deltas = heads.box_head(heads.pool(features, proposals, config.box_pool_size))
        found = detect(config, heads.coder, logits, deltas, proposals, sizes)
        boxes = [b for b, _, _ in found]
        mask_logits = heads.mask_head(heads.pool(features, boxes, config.mask_pool_size)) if sum(map(len, boxes)) \
            else features[0].new_zeros(0, config.num_labels, 1, 1)
        labels = torch.cat([lab for _, _, lab in found])
        own = mask_logits[torch.arange(len(labels), device=labels.device), labels].float().sigmoid()
        output.pred_boxes, output.pred_scores, output.pred_labels = boxes, [s for _, s, _ in found], \
            [lab for _, _, lab in found]
        output.pred_masks = [paste_masks(m, b, *padded) for m, b in zip(own.split([len(b) for b in boxes]), boxes)]


class MaskRCNNForObjectDetection(MaskRCNNModel):
    """Mask R-CNN for `object_detection` (AutoModelForObjectDetection): box AP."""


class MaskRCNNForInstanceSegmentation(MaskRCNNModel):
    """Mask R-CNN for instance segmentation (AutoModelForUniversalSegmentation, coco_instance): mask AP."""
