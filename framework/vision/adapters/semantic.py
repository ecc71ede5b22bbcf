"""Semantic segmentation models (SegFormer, UperNet): per-pixel class logits, often at a fraction of
the image's resolution (SegFormer: 1/4)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from framework.vision.adapters.base import Adapter
from framework.vision.collate import Batch
from framework.vision.sample import IGNORE_LABEL
from framework.vision.targets import semantic_target


class SemanticAdapter(Adapter):
    def __init__(self, model: nn.Module):
        self.model = model
        # The models' own loss ignores this label; ours must be the same (void, crowd, padding)
        ignore = getattr(model.config, "semantic_loss_ignore_index", None)
        if ignore is not None and ignore != IGNORE_LABEL:
            model.config.semantic_loss_ignore_index = IGNORE_LABEL

    @staticmethod
    def targets(batch: Batch) -> Tensor:
        """int64 [B, H, W] labels at the padded batch size, IGNORE_LABEL where nothing is scored."""
        return torch.stack([semantic_target(sample) for sample in batch.targets]).to(batch.images.device)

    def inputs(self, batch: Batch) -> dict[str, Any]:
        return {"pixel_values": batch.images, "labels": self.targets(batch)}

    def predictions(self, outputs: Any, batch: Batch) -> Tensor:
        """int64 [B, H, W] label maps at the batch's image size (logits upsampled bilinearly first, as
        the models' own loss does)."""
        logits = F.interpolate(outputs.logits, size=batch.images.shape[-2:], mode="bilinear", align_corners=False)
        return logits.argmax(1)
