"""scikit-learn's handwritten digits (1,797 8x8 images, shipped inside the package: no download)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from framework.api import TaskDataModule


class DigitsDataModule(TaskDataModule):
    class_names = [str(digit) for digit in range(10)]  # label i is the digit i; saved in checkpoints

    def prepare_data(self) -> None:
        pass  # the data ships with scikit-learn

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        from sklearn.datasets import load_digits

        images, labels = load_digits(return_X_y=True)
        features = torch.tensor(images / 16.0, dtype=torch.float32)  # pixel values are 0..16
        targets = torch.tensor(labels, dtype=torch.long)
        # The split depends on task.split_seed only, so every training seed sees the same data.
        order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(self.config.task.split_seed))
        n_val = int(len(order) * self.config.task.val_fraction)
        n_test = int(len(order) * self.config.task.test_fraction)
        parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
        self.data_train, self.data_val, self.data_test = (
            TensorDataset(features[parts[name]], targets[parts[name]]) for name in ("train", "val", "test")
        )
