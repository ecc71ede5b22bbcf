"""`framework predict RUN_DIR recordings.npz`: both heads' predictions for new samples.

The input is an .npz like a source file of the data format (README.md) whose `features` array is all
that is needed: `[N, D]` or `[N, T, C]` with the training data's sample shape. The features are pooled
and standardised as the training split was (its mean and spread), and predictions.csv lists per sample
(file, row) each head's 2 most probable classes with their probabilities.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from framework.api import DataError, top_k_columns, write_csv

from .features import SOURCES, pool


def read_features(path: Path, sample_shape: tuple[int, ...]) -> np.ndarray:
    """float32 [N, *sample_shape] from the `features` array of an .npz, with errors naming the file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "features" not in archive.files:
                raise DataError(f"{path}: no 'features' array (has {', '.join(archive.files) or 'none'}); "
                                f"save the samples with np.savez(path, features=...)")
            features = archive["features"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the feature file ({type(exc).__name__}: {exc}); it is corrupt, "
                        f"truncated or not an .npz written by np.savez") from None
    if tuple(features.shape[1:]) != tuple(sample_shape) or not np.issubdtype(features.dtype, np.number):
        raise DataError(f"{path}: features of shape {list(features.shape)} ({features.dtype}); the model trained "
                        f"on numbers of shape [N, {', '.join(map(str, sample_shape))}]")
    return features.astype(np.float32)


def predict_files(model, files: list[Path], output: Path, datamodule) -> list[Path]:
    spec = datamodule.load()
    mean, spread = datamodule.standardisation
    header, rows = ["file", "row"], []
    for path in files:
        features = pool(read_features(path, spec.input.sample_shape), datamodule.settings.temporal_pooling)
        _, logits = model.model(torch.from_numpy((features - mean) / spread).to(model.device))
        columns, tables = [], []
        for head in SOURCES:
            names, table = top_k_columns(logits[head].softmax(-1), list(spec.classes[head]), k=2, prefix=f"{head}_")
            columns, tables = columns + names, tables + [table]
        header = ["file", "row", *columns]
        rows += [[str(path), index, *[value for table in parts for value in table]]
                 for index, parts in enumerate(zip(*tables))]
    return [write_csv(output / "predictions.csv", header, rows)]
