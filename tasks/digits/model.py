"""A multi-layer perceptron on the 64 pixels of a digit."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from framework.api import TaskModel


def mlp(hidden: int, layers: int, dropout: float, classes: int = 10) -> nn.Sequential:
    blocks: list[nn.Module] = []
    width = 64
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, classes))
    return nn.Sequential(*blocks)


class DigitsModel(TaskModel):
    def __init__(self, optimizer, config):
        task = config.task
        super().__init__(mlp(task.hidden_size, task.hidden_layers, task.dropout), optimizer, config)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log_train_loss(loss, batch_size=len(y))
        return loss

    def _evaluate(self, batch, split: str) -> None:
        x, y = batch
        logits = self.model(x)
        self.log_scalars(
            {f"{split}_loss": F.cross_entropy(logits, y), f"{split}_acc": (logits.argmax(1) == y).float().mean()},
            batch_size=len(y),
        )

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def activations(self, batch) -> dict[str, torch.Tensor]:
        """Debugging hook (TaskModel.activations): the last hidden layer's features, logits and
        probabilities of a batch."""
        x, _ = batch
        layers = self.model.model  # the Sequential inside the GroupedModel
        features = layers[:-1](x)
        logits = layers[-1](features)
        return {"features": features, "logits": logits, "probabilities": logits.softmax(-1)}
