"""Data that goes wrong, caught early and named: used by TaskDataModule for every task.

- Each split is checked before its first data loader is made: it must have samples, and its first
  samples must load. An EMPTY VALIDATION SET IS AN ERROR (the one behaviour, by design): the best
  checkpoint and early stopping are chosen on it, and quietly holding out training data would change
  what a run trains on without its config saying so. A task without a validation split holds one out
  itself in `setup()`.
- A sample that fails to load is reported with its split, its index and, when the dataset can tell
  (`dataset.sample_source(index)`, e.g. the file path), its source. Errors that mean bad data (OSError:
  a missing or unreadable file or an image PIL cannot decode; EOFError; ValueError; DataError) become a
  DataError. Other exceptions are bugs in the dataset's code: they keep their type, with a note naming
  the sample.
- `engine.skip_bad_samples` > 0 lets training go on without up to that many samples whose data is bad
  (a DataError): each is logged, appended to <run dir>/logs/skipped_samples.txt and counted in
  scores.json, and its batch trains on the samples that loaded. Samples, not whole batches: a batch
  missing from an epoch would shift Lightning's count of the epoch's batches, and with it the
  validation and checkpoint at the epoch's end. Validation and test samples are never skipped: scores
  over another set of samples would not be comparable.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, IterableDataset

from framework.errors import DataError

log = logging.getLogger("framework.data")

BAD_DATA = (OSError, EOFError, ValueError, DataError)  # what a corrupt, truncated or missing file raises
CHECKED_SAMPLES = 2  # samples of each split loaded at setup: enough to catch a wrong path or format early


def _where(split: str, index: int, dataset: Any, error: BaseException) -> str:
    """`data_train sample 7 (<source>)`; the source is left out when the error already names it."""
    source = ""
    describe = getattr(dataset, "sample_source", None)
    if callable(describe):
        try:
            source = str(describe(index))
        except Exception:  # describing the sample must never hide the original error
            source = ""
    named = f" ({source})" if source and source not in str(error) else ""
    return f"data_{split} sample {index}{named}"


def load_sample(dataset: Any, index: int, split: str) -> Any:
    """`dataset[index]`, with a failure named by split, index and source."""
    try:
        return dataset[index]
    except BAD_DATA as exc:
        kind = "" if isinstance(exc, DataError) else f"{type(exc).__name__}: "
        raise DataError(f"{_where(split, index, dataset, exc)}: {kind}{exc}") from exc
    except Exception as exc:
        exc.add_note(f"while loading {_where(split, index, dataset, exc)}")
        raise


class NamedSamples(Dataset):
    """A map-style dataset whose loading errors name the split and the sample (see `load_sample`).
    Given `skipped`, a sample whose data is bad is recorded there and replaced by SKIPPED (dropped from
    its batch by `collate_skipping`) instead of failing the run."""

    def __init__(self, dataset: Dataset, split: str, skipped: SkippedSamples | None = None):
        self.dataset, self.split, self.skipped = dataset, split, skipped

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        if self.skipped is None:
            return load_sample(self.dataset, index, self.split)
        try:
            return load_sample(self.dataset, index, self.split)
        except DataError as exc:
            self.skipped.record(exc)
            return SKIPPED


def check_dataset(dataset: Any, split: str, task: str, owner: str) -> None:
    """Raise a DataError naming the task and split when `dataset` is empty or its first samples fail."""
    if isinstance(dataset, IterableDataset):
        return  # no length and no random access: problems surface when it is iterated
    try:
        length = len(dataset)
    except TypeError:
        raise DataError(f"task '{task}': data_{split} ({type(dataset).__name__}) has no len(); "
                        f"use a map-style Dataset or a torch IterableDataset") from None
    if length == 0:
        fix = {
            "val": "the engine selects the best checkpoint (and stops early) on validation data: hold out part of "
                   "the training data in setup(), e.g. with torch.utils.data.random_split and a fixed generator",
            "train": "check the data path and the files the task reads in setup()",
            "test": "check the data path and the files the task reads in setup()",
        }[split]
        raise DataError(f"task '{task}': data_{split} is empty (0 samples) after {owner}.setup(); {fix}")
    for index in range(min(CHECKED_SAMPLES, length)):
        try:
            load_sample(dataset, index, split)
        except DataError as exc:
            raise DataError(f"task '{task}': {exc}") from exc


class SkippedSamples:
    """The budget and the record of training samples skipped because their data failed to load.

    Each skip is appended to `log_file` (<run dir>/logs/skipped_samples.txt) as it happens, and the file
    is what is counted: DataLoader worker processes each hold a copy of this object, but they share the
    file. Without a file (no run directory) the count is this process's own.
    """

    def __init__(self, budget: int, log_file: Path | None):
        self.budget, self.log_file = budget, log_file
        self._messages: list[str] = []

    def count(self) -> int:
        if self.log_file is None:
            return len(self._messages)
        try:
            with self.log_file.open(encoding="utf-8") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0

    def record(self, error: DataError) -> None:
        """Count one skipped sample, or raise when the budget is spent."""
        if self.count() >= self.budget:
            raise DataError(f"more than engine.skip_bad_samples={self.budget} training samples failed to load; "
                            f"this one: {error}") from error
        self._messages.append(str(error))
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("a", encoding="utf-8") as fh:
                fh.write(f"{error}\n")
        log.warning("skipped a training sample (%d of at most %d): %s", self.count(), self.budget, error)


class _Skipped:
    """Stands in for a sample that failed to load, until `collate_skipping` drops it from its batch."""


SKIPPED = _Skipped()


def collate_skipping(samples: list[Any], collate: Any = None) -> Any:
    """`collate` (default_collate when None) over the samples that loaded. A batch of which no sample
    loaded is an error: an empty batch has no loss to train on."""
    from torch.utils.data import default_collate

    kept = [sample for sample in samples if sample is not SKIPPED]
    if not kept:
        raise DataError(f"none of the {len(samples)} samples of a training batch loaded (see logs/skipped_samples.txt)")
    return (collate or default_collate)(kept)
