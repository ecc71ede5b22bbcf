"""Semantic segmentation: mean IoU, pixel accuracy and mean class accuracy from a confusion matrix.

Pixels whose target is `ignore_index` are not counted. IoU per class = TP / (TP + FP + FN) over the
whole dataset (not averaged per image); mIoU averages the classes that occur in the targets or the
predictions (a class absent from both has no IoU), as torchmetrics' JaccardIndex(average="macro") and
the usual ADE20K / COCO-stuff evaluations do. Mean accuracy averages TP / (TP + FN) over classes present
in the targets.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from framework.vision.metrics.base import Accumulator
from framework.vision.sample import IGNORE_LABEL


class SemanticIoU(Accumulator):
    """Per image, the non-zero entries of its confusion matrix. `class_names` adds `iou/<name>` per class."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_LABEL, class_names: Sequence[str] | None = None):
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes, self.ignore_index, self.class_names = num_classes, ignore_index, class_names
        super().__init__()

    def update(self, pred: Tensor, target: Tensor, image_ids: Sequence[Any] | None = None) -> None:
        """Label maps [H, W] or batches [B, H, W] (predictions already argmax-ed), optionally one image id
        per map."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        if pred.dim() == 2:
            pred, target = pred[None], target[None]
            if image_ids is not None and not isinstance(image_ids, (list, tuple)):
                image_ids = [image_ids]
        if image_ids is not None and len(image_ids) != len(pred):
            raise ValueError(f"{len(image_ids)} image ids for {len(pred)} maps")
        classes = self.num_classes
        scored = target != self.ignore_index
        if scored.any():  # one check per batch: on a GPU each check waits for the device
            low, high = torch.aminmax(torch.cat([pred[scored], target[scored]]))
            if int(low) < 0 or int(high) >= classes:
                raise ValueError(f"labels must lie in 0..{classes - 1} (or be {self.ignore_index} in the target)")
        for index in range(len(pred)):
            keep = scored[index].reshape(-1)
            p = pred[index].reshape(-1)[keep].to(torch.int64)
            t = target[index].reshape(-1)[keep].to(torch.int64)
            counts = torch.bincount(t * classes + p, minlength=classes * classes).cpu()
            cells = torch.nonzero(counts).view(-1)
            # sparse: an image touches a few dozen of the C*C cells
            record = torch.stack([cells, counts[cells]], dim=1).numpy()
            self._add(None if image_ids is None else image_ids[index], record)

    def confusion_matrix(self, records: list[np.ndarray] | None = None) -> np.ndarray:
        """[C, C] pixel counts, rows = target, columns = prediction."""
        records = list(self._records.values()) + self._anonymous if records is None else records
        flat = np.zeros(self.num_classes * self.num_classes, dtype=np.int64)
        if records:
            rows = np.concatenate(records)
            np.add.at(flat, rows[:, 0], rows[:, 1])
        return flat.reshape(self.num_classes, self.num_classes)

    def _compute(self, records: list[np.ndarray]) -> dict[str, float]:
        matrix = self.confusion_matrix(records)
        tp = np.diag(matrix).astype(np.float64)
        target_count, pred_count = matrix.sum(1), matrix.sum(0)
        union = target_count + pred_count - tp
        present = union > 0
        iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
        accuracy = np.divide(tp, target_count, out=np.zeros_like(tp), where=target_count > 0)
        total = matrix.sum()
        out = {
            "miou": float(iou[present].mean()) if present.any() else math.nan,
            "pixel_accuracy": float(tp.sum() / total) if total else math.nan,
            "mean_accuracy": float(accuracy[target_count > 0].mean()) if (target_count > 0).any() else math.nan,
        }
        if self.class_names is not None:
            for label in np.flatnonzero(present):
                out[f"iou/{self.class_names[label]}"] = float(iou[label])
        return out
