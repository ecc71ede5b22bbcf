"""A multi-layer perceptron on the 64 pixels of a digit."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from framework.api import FrameworkError, TaskModel, top_k_columns, write_csv


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

    # `framework predict RUN_DIR digits.npy`: arrays of 8x8 images in scikit-learn's scale (0..16)
    predict_suffixes = (".npy", ".csv")

    def predict_files(self, files, output, datamodule):
        """predictions.csv: per image (file, row) the 3 most probable digits with their probabilities."""
        header, rows = ["file", "row"], []
        for path in files:
            images = read_digit_images(path).to(self.device)
            names, top = top_k_columns(self.model(images).softmax(-1), datamodule.class_names, k=3)
            header = ["file", "row", *names]
            rows += [[str(path), index, *row] for index, row in enumerate(top)]
        return [write_csv(output / "predictions.csv", header, rows)]


def read_digit_images(path) -> torch.Tensor:
    """float32 [N, 64] inputs scaled as in training (/16) from a .npy ([N, 64], [N, 8, 8], or one image) or
    a .csv (one image of 64 comma-separated values per line)."""
    import numpy as np

    try:
        if path.suffix.lower() == ".csv":
            array = np.loadtxt(path, delimiter=",", ndmin=2)
        else:
            array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FrameworkError(f"{path}: cannot read digit images ({str(exc).splitlines()[0]}); "
                             f"give a .npy or .csv of 8x8 images with values 0..16") from None
    if array.size == 0 or array.size % 64 or array.shape[-1] not in (8, 64) or not np.issubdtype(array.dtype, np.number):
        raise FrameworkError(f"{path}: holds an array of shape {list(array.shape)}; digit images are [N, 64] or "
                             f"[N, 8, 8] numbers 0..16 (scikit-learn's load_digits scale)")
    return torch.tensor(array.reshape(-1, 64) / 16.0, dtype=torch.float32)
