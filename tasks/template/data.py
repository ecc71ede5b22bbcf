"""Template data: Gaussian blobs generated in memory, so the template runs anywhere in seconds.

A TaskDataModule needs two methods:
- prepare_data(): download and preprocess once (runs in one process; do not set state here).
- setup(stage): load and split, and set self.data_train / self.data_val / self.data_test.
The base class turns those datasets into DataLoaders with the per-device batch size, a shuffle that
depends only on (engine.seed, epoch) so resumed runs are exact, and engine.data_workers workers.
Validation and test data must be different datasets: the engine checks. Each split is checked before
its first loader: an empty split is an error (the validation set too: hold one out of the training data
here if your data has none), and a sample that fails to load is named by its split and index, and by
`dataset.sample_source(index)` (e.g. its file path) when your dataset defines it. Helpers that read
files with named errors: read_json, read_csv and load_image from framework.api.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from framework.api import TaskDataModule


def make_blobs(n: int, classes: int, dim: int, noise: float, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * 2.0
    labels = torch.randint(classes, (n,), generator=generator)
    points = centres[labels] + noise * torch.randn(n, dim, generator=generator)
    return TensorDataset(points, labels)


class BlobsDataModule(TaskDataModule):
    # Optional: label names, saved in every checkpoint (`framework evaluate` compares them). Set them here
    # or in setup() when they come from the data.
    class_names = None

    def prepare_data(self) -> None:
        # Download / unpack / preprocess here. Generated data needs nothing.
        pass

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:  # Lightning calls setup once per stage (fit, validate, test)
            return
        task = self.config.task
        # Different seeds per split: the three splits never share a sample.
        self.data_train = make_blobs(task.train_size, task.num_classes, task.input_dim, task.noise, seed=1)
        self.data_val = make_blobs(task.eval_size, task.num_classes, task.input_dim, task.noise, seed=2)
        self.data_test = make_blobs(task.eval_size, task.num_classes, task.input_dim, task.noise, seed=3)
