"""ClassificationScores: top-1 / top-5 accuracy, macro F1, precision and recall, and the confusion matrix."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from framework.vision.metrics.base import Accumulator


class ClassificationScores(Accumulator):
    """Per batch, each image's (label, top-1, whether the label is in the top k). Macro averages are over
    the classes that occur in the targets or the predictions (a class never seen and never predicted has
    no precision or recall to average)."""

    def __init__(self, num_classes: int, top_k: int = 5):
        self.num_classes, self.top_k = num_classes, min(top_k, num_classes)
        super().__init__()

    def update(self, logits: Tensor, labels: Tensor, image_ids: Sequence | None = None) -> None:
        if logits.dim() != 2 or logits.shape[1] != self.num_classes or len(labels) != len(logits):
            raise ValueError(f"expected logits [B, {self.num_classes}] and labels [B], "
                             f"got {tuple(logits.shape)} and {tuple(labels.shape)}")
        top = logits.detach().topk(self.top_k, dim=1).indices
        labels = labels.detach().to(top.device)
        in_top = (top == labels[:, None]).any(1)
        rows = torch.stack([labels, top[:, 0], in_top.long()], dim=1).cpu().numpy()
        for index, row in enumerate(rows):
            self._add(None if image_ids is None else image_ids[index], row[None])

    def confusion_matrix(self, records: list[np.ndarray] | None = None) -> np.ndarray:
        """[C, C] image counts, rows = target, columns = top-1 prediction."""
        records = list(self._records.values()) + self._anonymous if records is None else records
        matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        if records:
            rows = np.concatenate(records)
            np.add.at(matrix, (rows[:, 0], rows[:, 1]), 1)
        return matrix

    def _compute(self, records: list[np.ndarray]) -> dict[str, float]:
        if not records:
            return {name: math.nan for name in ("acc", f"top{self.top_k}_acc", "f1", "precision", "recall")}
        rows = np.concatenate(records)
        matrix = self.confusion_matrix(records)
        tp = np.diag(matrix).astype(np.float64)
        predicted, actual = matrix.sum(0), matrix.sum(1)
        seen = (predicted + actual) > 0
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
        return {
            "acc": float(tp.sum() / len(rows)),
            f"top{self.top_k}_acc": float(rows[:, 2].mean()),
            "f1": float(f1[seen].mean()),
            "precision": float(precision[seen].mean()),
            "recall": float(recall[seen].mean()),
        }
