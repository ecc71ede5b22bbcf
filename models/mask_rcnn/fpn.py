"""The feature extractor: a transformers ResNet (AutoBackbone, so ImageNet ResNet weights load into
`body`) and a feature pyramid over its four stages (Lin et al. 2017): a 1x1 lateral conv per stage, a
top-down pathway of 2x nearest upsampling and sums, a 3x3 conv on each sum, and P6 as P5 max-pooled
with stride 2 (the RPN's extra level for the largest anchors)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class FeaturePyramid(nn.Module):
    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)
        for conv in [*self.lateral, *self.output]:  # Detectron2's FPN init ("c2_xavier_fill")
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """C2-C5 -> P2-P6, finest first."""
        top = self.lateral[-1](features[-1])
        outputs = [self.output[-1](top)]
        for index in range(len(features) - 2, -1, -1):
            lateral = self.lateral[index](features[index])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            outputs.insert(0, self.output[index](top))
        outputs.append(F.max_pool2d(outputs[-1], kernel_size=1, stride=2))
        return outputs


class BackboneWithPyramid(nn.Module):
    """`body`: the ResNet (transformers ResNetBackbone); `fpn`: the pyramid. Output: P2-P6 and their strides."""

    def __init__(self, config):
        super().__init__()
        from transformers import AutoBackbone

        self.body = AutoBackbone.from_config(config.backbone_config)
        self.fpn = FeaturePyramid(list(self.body.channels), config.fpn_channels)
        self.strides = [4, 8, 16, 32, 64]

    def forward(self, pixel_values: Tensor) -> list[Tensor]:
        return self.fpn(list(self.body(pixel_values).feature_maps))
