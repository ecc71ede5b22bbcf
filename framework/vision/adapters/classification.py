"""Image classifiers (ViT, ResNet, any AutoModelForImageClassification): one label per image."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from framework.vision.adapters.base import Adapter
from framework.vision.collate import Batch


class ClassificationAdapter(Adapter):
    def __init__(self, model: nn.Module):
        self.model = model

    @staticmethod
    def targets(batch: Batch) -> Tensor:
        """int64 [B]: the one label of each image (ImageFolder gives `labels` of shape [1])."""
        return torch.cat([sample.labels[:1] for sample in batch.targets]).to(batch.images.device)

    def inputs(self, batch: Batch) -> dict[str, Any]:
        return {"pixel_values": batch.images, "labels": self.targets(batch)}

    def predictions(self, outputs: Any, batch: Batch) -> Tensor:
        """Logits [B, C]: accuracy, top-k and F1 all start from them."""
        return outputs.logits
