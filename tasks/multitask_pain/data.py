"""Both sources read once, split by subject, and combined into one dataset per split.

A batch is `(features [B, F], pain_labels [B], stimulus_labels [B])`. A sample has the label of its own
source only; the other is NO_LABEL, and the model leaves it out of that head's loss and scores. Training
shuffles both sources together.

- Splits are by subject (task.val_fraction / task.test_fraction of each source's subjects, drawn with
  task.split_seed), so no person is in two splits; a subject id found in both files goes to one split for
  both. Every source gets at least one subject in every split, and a source with too few subjects for
  that is a DataError naming it: the best checkpoint and early stopping always have validation data for
  both heads. (The engine's own check, which makes an empty split an error, stays behind it as a guard.)
- Features are pooled over time as task.temporal_pooling says, then standardised with the training
  split's mean and spread (channels come in very different units).
- task.class_weights=balanced weights each class by n / (classes * count) over the training labels of
  its source (scikit-learn's "balanced"); a class without training samples is then a DataError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import TensorDataset

from framework.api import DataError, TaskDataModule

from .features import SOURCES, InputShape, Source, detect_input_shape, load_source, pool, read_manifest

if TYPE_CHECKING:
    from .settings import Settings

NO_LABEL = -1  # the label of the other source's head: masked out of its loss and scores
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataSpec:
    """What the model is sized and weighted from, all taken from the data."""

    input: InputShape
    classes: dict[str, tuple[str, ...]]  # per head (source), from manifest.json
    class_weights: dict[str, torch.Tensor | None]  # per head; None unless task.class_weights=balanced


def assign_subjects(sources: list[Source], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """{subject id: split}. Each source's subjects are split by the fractions (at least one per split);
    a subject already placed by an earlier source keeps its split and counts toward this source's share."""
    placed: dict[str, str] = {}
    for index, source in enumerate(sources):
        subjects = sorted(set(source.subjects.tolist()))  # sorted: the samples' order in the file does not matter
        n = len(subjects)
        want = {"val": max(1, int(val_fraction * n + 0.5)), "test": max(1, int(test_fraction * n + 0.5))}
        if n - want["val"] - want["test"] < 1:
            raise DataError(f"{source.path}: source '{source.name}' has {n} subject(s), too few for {want['val']} "
                            f"validation, {want['test']} test and at least 1 training subject; add subjects or lower "
                            f"task.val_fraction / task.test_fraction")
        for subject in subjects:
            if subject in placed and placed[subject] in want:
                want[placed[subject]] -= 1
        free = [subjects[i] for i in np.random.default_rng([seed, index]).permutation(n) if subjects[i] not in placed]
        for split in ("val", "test"):
            take = max(0, want[split])
            placed.update((subject, split) for subject in free[:take])
            free = free[take:]
        placed.update((subject, "train") for subject in free)
        for split in SPLITS:
            if not any(placed[s] == split for s in subjects):
                raise DataError(f"{source.path}: source '{source.name}' has no subject in the {split} split: its "
                                f"subjects are all shared with an earlier source that placed them elsewhere")
    return placed


class MultiTaskDataModule(TaskDataModule):
    def __init__(self, config, settings: Settings):
        super().__init__(config)
        self.settings = settings
        self.spec: DataSpec | None = None

    def prepare_data(self) -> None:
        self.data_dir()  # generates the bundled data on first use

    def data_dir(self):
        if self.settings.data_dir is not None:
            return self.settings.data_dir
        from .synthetic import prepare_synthetic

        return prepare_synthetic()

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def load(self) -> DataSpec:
        """Read, check and split both sources (once): the datasets and the spec the model is built from."""
        if self.spec is not None:
            return self.spec
        settings = self.settings
        manifest = read_manifest(self.data_dir())
        sources = [load_source(name, *manifest[name]) for name in SOURCES]
        shape = detect_input_shape(sources, settings.temporal_pooling)
        placed = assign_subjects(sources, settings.val_fraction, settings.test_fraction, settings.split_seed)
        parts = {split: self._combine(sources, placed, split) for split in SPLITS}
        mean, spread = _standardisation(parts["train"][0])
        self.standardisation = (mean, spread)  # of the training split: `framework predict` scales new samples so
        self.data_train, self.data_val, self.data_test = (
            TensorDataset(torch.from_numpy((x - mean) / spread), *map(torch.from_numpy, labels))
            for x, *labels in (parts[split] for split in SPLITS)
        )
        classes = {source.name: source.classes for source in sources}
        self.class_names = [f"{head}:{name}" for head in SOURCES for name in classes[head]]  # saved in checkpoints
        weights = {head: None for head in SOURCES}
        if settings.class_weights == "balanced":
            weights = {s.name: _balanced_weights(s, s.labels[_in_split(s, placed, "train")]) for s in sources}
        self.spec = DataSpec(shape, classes, weights)
        return self.spec

    def _combine(self, sources: list[Source], placed: dict[str, str], split: str):
        """Features [N, F] of both sources' samples in `split` and one label array per head."""
        features, labels = [], {head: [] for head in SOURCES}
        for source in sources:
            keep = _in_split(source, placed, split)
            features.append(pool(source.features[keep], self.settings.temporal_pooling).astype(np.float32))
            for head in SOURCES:
                labels[head].append(source.labels[keep] if head == source.name else np.full(keep.sum(), NO_LABEL))
        return (np.concatenate(features), *(np.concatenate(labels[head]).astype(np.int64) for head in SOURCES))


def _in_split(source: Source, placed: dict[str, str], split: str) -> np.ndarray:
    return np.array([placed[s] == split for s in source.subjects], dtype=bool)


def _standardisation(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and spread of the training split; a constant feature keeps a spread of 1."""
    mean, spread = train.mean(axis=0), train.std(axis=0)
    return mean.astype(np.float32), np.where(spread > 1e-8, spread, 1.0).astype(np.float32)


def _balanced_weights(source: Source, train_labels: np.ndarray) -> torch.Tensor:
    counts = np.bincount(train_labels, minlength=len(source.classes))
    missing = [source.classes[c] for c in np.flatnonzero(counts == 0)]
    if missing:
        raise DataError(f"{source.path}: task.class_weights=balanced, but class(es) {', '.join(missing)} of source "
                        f"'{source.name}' have no training samples; use class_weights=uniform or add such samples")
    return torch.tensor(len(train_labels) / (len(counts) * counts), dtype=torch.float32)
