"""A shared MLP encoder with a pain head and a stimulus head, trained on both sources at once.

The loss of a batch is, per head, the (class-weighted) cross entropy averaged over the samples that have
that head's label, times task.<head>_loss_weight, summed over heads. A head whose source has no sample in
the batch adds exactly 0 (not NaN): the masked mean divides a zero sum by a clamped zero count.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from framework.api import TaskModel

from .data import NO_LABEL, DataSpec
from .features import SOURCES
from .metrics import HeadMetrics
from .settings import Settings


class MultiTaskNet(nn.Module):
    """encoder: Linear -> LayerNorm -> ReLU -> Dropout per hidden width; one linear head per source."""

    def __init__(self, inputs: int, hidden_sizes: tuple[int, ...], dropout: float, classes: dict[str, int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = inputs
        for hidden in hidden_sizes:
            # LayerNorm keeps the encoder's scale steady for optimizers without adaptive steps (SGD)
            layers += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.encoder = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({head: nn.Linear(width, classes[head]) for head in SOURCES})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        encoded = self.encoder(x)
        return encoded, {head: layer(encoded) for head, layer in self.heads.items()}


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None):
    """(sum of the weighted losses, sum of their weights) over the samples whose label is not NO_LABEL.
    Their ratio is F.cross_entropy's weighted mean; both are 0 when no sample has a label."""
    has = labels != NO_LABEL
    safe = torch.where(has, labels, 0)  # any valid index for the unlabelled ones: masked out below
    losses = F.cross_entropy(logits, safe, weight=weight, reduction="none")  # already multiplied by weight[y]
    weights = weight[safe] if weight is not None else torch.ones_like(losses)
    zero = torch.zeros_like(losses)
    return torch.where(has, losses, zero).sum(), torch.where(has, weights, zero).sum()


class MultiTaskModel(TaskModel):
    def __init__(self, optimizer, config, settings: Settings, spec: DataSpec):
        classes = {head: len(names) for head, names in spec.classes.items()}  # the manifest's, never a config key
        super().__init__(MultiTaskNet(spec.input.size, settings.hidden_sizes, settings.dropout, classes), optimizer, config)
        self.loss_weights = settings.loss_weights
        for head in SOURCES:
            # not persistent: recomputed from the data, so a checkpoint holds only learned weights
            self.register_buffer(f"{head}_class_weights", spec.class_weights[head], persistent=False)
        self.scores = {head: HeadMetrics(classes[head]) for head in SOURCES}

    def _loss(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        x, labels = batch[0], dict(zip(SOURCES, batch[1:]))
        _, logits = self.model(x)
        parts = {head: masked_cross_entropy(logits[head], labels[head], getattr(self, f"{head}_class_weights"))
                 for head in SOURCES}
        loss = sum(self.loss_weights[head] * total / count.clamp_min(1e-12) for head, (total, count) in parts.items())
        return loss, logits, parts

    def training_step(self, batch, batch_idx):
        loss, _, _ = self._loss(batch)
        self.log_train_loss(loss, batch_size=len(batch[0]))
        return loss

    def _evaluate(self, batch) -> None:
        _, logits, parts = self._loss(batch)
        for head, label in zip(SOURCES, batch[1:]):
            self.scores[head].update(logits[head], label, *parts[head])

    def _log_scores(self, split: str) -> None:
        # Summed over devices before computing: macro F1 of the whole split, not a mean of per-device F1s
        reduce = lambda t: self.trainer.strategy.reduce(t, reduce_op="sum")  # noqa: E731
        values = {}
        for head in SOURCES:
            values.update({f"{split}_{head}_{k}": v for k, v in self.scores[head].compute(reduce).items()})
            self.scores[head].reset()
        values[f"{split}_loss"] = sum(self.loss_weights[h] * values[f"{split}_{h}_loss"] for h in SOURCES)
        self.log_dict(values, sync_dist=False)  # already reduced over devices

    def on_validation_epoch_start(self) -> None:
        for metrics in self.scores.values():
            metrics.reset()

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    predict_suffixes = (".npz",)  # `framework predict`: predict.py

    def predict_files(self, files, output, datamodule):
        from .predict import predict_files

        return predict_files(self, files, output, datamodule)

    def activations(self, batch) -> dict[str, torch.Tensor]:
        """Debugging hook (TaskModel.activations): the shared encoding, and each head's logits and
        probabilities (softmax: one class per head)."""
        encoded, logits = self.model(batch[0])
        values = {"encoded": encoded}
        for head in SOURCES:
            values[f"{head}_logits"] = logits[head]
            values[f"{head}_probabilities"] = logits[head].softmax(-1)
        return values
