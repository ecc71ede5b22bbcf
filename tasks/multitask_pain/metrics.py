"""Per-head scores over a whole evaluation epoch: accuracy, macro F1 and the mean loss.

Macro F1 cannot be averaged over batches, so each head accumulates a confusion matrix (and its loss
sums) on the model's device and computes the scores once at the end of the epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .data import NO_LABEL
from .settings import HEAD_METRICS


def macro_f1(matrix: torch.Tensor) -> torch.Tensor:
    """Mean F1 over the classes that occur in the targets or the predictions (rows: target, columns:
    prediction), as scikit-learn's f1_score(average="macro") counts them."""
    tp = matrix.diagonal().double()
    targets, predictions = matrix.sum(1).double(), matrix.sum(0).double()
    present = (targets + predictions) > 0
    f1 = 2 * tp / (targets + predictions).clamp_min(1)
    return f1[present].mean() if present.any() else torch.tensor(float("nan"))


class HeadMetrics:
    """reset / update / compute for one head; samples labelled NO_LABEL are not counted."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.matrix: torch.Tensor | None = None
        self.loss_sum: torch.Tensor | None = None
        self.weight_sum: torch.Tensor | None = None

    def update(self, logits: torch.Tensor, labels: torch.Tensor, loss_sum: torch.Tensor, weight_sum: torch.Tensor) -> None:
        """`loss_sum` / `weight_sum`: the batch's masked loss parts (model.masked_cross_entropy), so the
        epoch's loss is the same weighted mean the training step takes, over all of the epoch's samples."""
        k = self.num_classes
        has = labels != NO_LABEL
        # bincount on the device, no host sync per batch: unlabelled samples land in an extra bin, dropped
        cells = torch.where(has, labels * k + logits.argmax(1), k * k)
        counts = torch.bincount(cells, minlength=k * k + 1)[: k * k].reshape(k, k)
        if self.matrix is None:
            self.matrix, self.loss_sum, self.weight_sum = counts, loss_sum.detach(), weight_sum.detach()
        else:
            self.matrix = self.matrix + counts
            self.loss_sum = self.loss_sum + loss_sum.detach()
            self.weight_sum = self.weight_sum + weight_sum.detach()

    def compute(self, reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> dict[str, float]:
        """{"loss", "acc", "f1"} over everything seen since reset; `reduce` sums a tensor over devices."""
        if self.matrix is None:
            return {name: float("nan") for name in HEAD_METRICS}
        matrix = reduce(self.matrix)
        loss_sum, weight_sum = reduce(self.loss_sum), reduce(self.weight_sum)
        total = matrix.sum()
        return {
            "loss": float(loss_sum / weight_sum) if weight_sum > 0 else float("nan"),
            "acc": float(matrix.diagonal().sum() / total) if total > 0 else float("nan"),
            "f1": float(macro_f1(matrix)),
        }
