"""The template model: a small convolutional image classifier, written as a transformers model so that
`save_pretrained` / `from_pretrained`, the Auto classes and the engine's classification adapter all work
with it. Copy this folder to add your own architecture (docs/adding_a_model.md).

    framework run tasks=classification task.model.name=template-small

What the engine needs from a classifier: `forward(pixel_values, labels=None)` returning an output with
`.logits` [B, num_labels] and `.loss` when labels are given (ImageClassifierOutput).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

from .configuration import TemplateConvNetConfig


class TemplateConvNetPreTrainedModel(PreTrainedModel):
    config_class = TemplateConvNetConfig
    base_model_prefix = "convnet"  # the feature extractor (trained at task.model.backbone_lr_multiplier when pretrained)
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        # called by transformers on every submodule of a model built from a config (random init)
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class TemplateConvNetModel(TemplateConvNetPreTrainedModel):
    """Conv-BatchNorm-ReLU stages, each halving the resolution, then global average pooling."""

    def __init__(self, config: TemplateConvNetConfig):
        super().__init__(config)
        stages, width = [], config.num_channels
        for hidden in config.hidden_sizes:
            stages += [nn.Conv2d(width, hidden, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU()]
            width = hidden
        self.stages = nn.Sequential(*stages)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.stages(pixel_values).mean(dim=(2, 3))


class TemplateConvNetForImageClassification(TemplateConvNetPreTrainedModel):
    def __init__(self, config: TemplateConvNetConfig):
        super().__init__(config)
        self.convnet = TemplateConvNetModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_sizes[-1], config.num_labels)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **_: object) -> ImageClassifierOutput:
        logits = self.classifier(self.dropout(self.convnet(pixel_values)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)
