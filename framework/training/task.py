"""The task contract: TaskModel (a LightningModule) and TaskDataModule (a LightningDataModule).

A task folder provides, in task.py:

    def get_datamodule(config) -> TaskDataModule
    def get_task(optimizer, config) -> tuple[TaskModel, TaskDataModule]

`optimizer` is a factory injected by the engine; a task never imports a concrete optimizer. `config` is
the run's frozen configuration (`config.task.batch_size`, `config.engine.seed`, ...).

Batch size rule (framework/config/batch_size.py): `task.batch_size` is the global batch size of one optimizer
step. Each of the `engine.devices` devices loads `batch_size / (devices * engine.accumulate_grad_batches)`
samples per micro-batch, so a result does not depend on how many devices trained it or on accumulation.

Optional parts of the contract:
- `describe(config) -> str` in task.py: one line saying what the config trains (model, its size, random
  or pretrained, bundled or real data), printed first by `framework run` (framework/commands/describe.py).
- `TaskDataModule.class_names`: label names, saved in every checkpoint and compared by `framework evaluate`.
- `TaskDataModule.collate_fn`: how a loader batches samples (default: torch's default_collate).
- `dataset.sample_source(index) -> str` on a dataset: where a sample comes from (e.g. its file), named in
  loading errors.
- `TaskDataModule.check_data(split, dataset)`: extra checks of a split before its first loader.
- `TaskModel.activations(batch) -> dict[str, Tensor]`: internal tensors of a batch, for debugging.
- `TaskModel.predict_suffixes` and `TaskModel.predict_files(files, output, datamodule)`: `framework predict`
  on new input files (framework/training/predict.py, docs/predict.md).
- `TaskModel.save_figure(figure, name, caption)` at test time: a picture of the tested checkpoint (a
  confusion matrix, predicted masks) that `framework plot` and `framework report` show.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, TensorDataset

from framework.config.batch_size import micro_batch_size
from framework.config.file_io import atomic_write_text
from framework.errors import FrameworkError
from framework.results.run_folder import figures_dir
from framework.training.data_checks import NamedSamples, SkippedSamples, check_dataset, collate_skipping
from framework.training.parameter_groups import GroupedModel


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness (shuffle, dropout, augmentation), from (seed, epoch) alone."""
    return (seed * 1_000_003 + epoch) % 2**32


def epoch_permutation(length: int, seed: int, epoch: int) -> torch.Tensor:
    """A random order of `range(length)` that depends only on (seed, epoch)."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(length, generator=generator)


class ResumePoint:
    """Where a run stopped inside an epoch (a checkpoint saved mid-epoch on preemption or timeout):
    the shuffled samplers skip the batches of that epoch that were already trained on, once."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.batches = 0

    def set(self, epoch: int, batches: int) -> None:
        self.epoch, self.batches = epoch, batches

    def take(self, epoch: int) -> int:
        """Batches to skip at the start of `epoch` (consumed: the next pass over it is whole)."""
        if epoch != self.epoch:
            return 0
        skip, self.epoch, self.batches = self.batches, None, 0
        return skip


class EpochShuffleSampler(Sampler[int]):
    """A random order that depends only on (seed, epoch).

    Lightning calls `set_epoch` before each epoch, so a run resumed from a checkpoint sees the same
    order as one that was never interrupted. The order is drawn at the first item, not when the iterator
    is made: Lightning makes the first epoch's iterator early (when the schedule asks for the number of
    steps), before it sets the epoch a resumed run starts at.
    """

    def __init__(self, length: int, seed: int, resume: ResumePoint | None = None, batch_size: int = 1):
        self.length, self.seed, self.epoch = length, seed, 0
        self.resume, self.batch_size = resume, batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = epoch_permutation(self.length, self.seed, self.epoch)
        skip = self.resume.take(self.epoch) if self.resume else 0
        yield from order[skip * self.batch_size:].tolist()

    def __len__(self) -> int:
        return self.length


class TensorBatchSampler(Sampler[torch.Tensor]):
    """Whole batches as index tensors, for a TensorDataset: `dataset[indices]` gathers a batch with one
    indexing per tensor, where a DataLoader would call `__getitem__` per sample and stack the results
    (which takes longer than the training step of a small model).

    Shuffled (`seed` given), the batches are EpochShuffleSampler's order cut into pieces, drawn at the
    first batch as there: the same batches, depending only on (seed, epoch). Unshuffled, they follow the
    dataset's order. The last batch may be smaller, as with a DataLoader's default `drop_last=False`.
    """

    def __init__(self, length: int, batch_size: int, seed: int | None = None, resume: ResumePoint | None = None):
        self.length, self.batch_size, self.seed, self.epoch = length, batch_size, seed, 0
        self.resume = resume

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if self.seed is None:
            order = torch.arange(self.length)
        else:
            order = epoch_permutation(self.length, self.seed, self.epoch)
        skip = self.resume.take(self.epoch) if self.resume else 0
        yield from order.split(self.batch_size)[skip:]

    def __len__(self) -> int:
        return -(-self.length // self.batch_size)


def per_device_batch_size(config: Any) -> int:
    """Samples per loader batch on each device: the global `task.batch_size` of one optimizer step split
    over `engine.devices` x `engine.nodes` and `engine.accumulate_grad_batches` (framework/config/batch_size.py); it must divide evenly."""
    try:
        return micro_batch_size(config.task.batch_size, config.engine.devices, config.engine.accumulate_grad_batches,
                                config.engine.get("nodes", 1))
    except ValueError as exc:
        raise FrameworkError(str(exc)) from None


class TaskDataModule(LightningDataModule):
    """Base data module: set `data_train`, `data_val`, `data_test` in `setup`; the loaders follow.

    Each split is checked before its first loader (`check_data`): an empty split, an empty validation set
    included, is a DataError, and so is a first sample that fails to load (framework/training/data_checks.py).
    """

    class_names: list[str] | None = None  # label names, when the task has them: saved in checkpoints
    # How a loader turns a list of samples into a batch (e.g. framework.vision.sample.Collate, which pads
    # images of different sizes); None: torch's default_collate. Not used for TensorDatasets.
    collate_fn: Callable[[list[Any]], Any] | None = None

    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        self.data_train: Dataset | None = None
        self.data_val: Dataset | None = None
        self.data_test: Dataset | None = None
        self.resume_point = ResumePoint()  # set by the engine when resuming from a mid-epoch checkpoint
        self._checked: set[str] = set()
        run_dir = config["run"].get("dir") if "run" in config else None
        # Training samples skipped for bad data (engine.skip_bad_samples), recorded in the run directory
        self.skipped = SkippedSamples(
            int(config.engine.skip_bad_samples), Path(run_dir) / "logs" / "skipped_samples.txt" if run_dir else None
        )

    @property
    def batch_size(self) -> int:
        return per_device_batch_size(self.config)

    def check_data(self, split: str, dataset: Dataset) -> None:
        """Called once per split before its first loader. Override to add a task's own checks (shapes,
        label ranges) and call super(): the base checks the split is not empty and its first samples load."""
        check_dataset(dataset, split, self.config.task.name, type(self).__name__)

    def _loader(self, dataset: Dataset | None, split: str, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise FrameworkError(
                f"task '{self.config.task.name}': data_{split} is not set; assign it in "
                f"{type(self).__name__}.setup() for stage '{'fit' if split in ('train', 'val') else 'test'}'"
            )
        if split not in self._checked:
            self.check_data(split, dataset)
            self._checked.add(split)
        workers, seed = self.config.engine.data_workers, self.config.engine.seed
        # The loader's own generator keeps the base seed it draws for each new iterator out of the global
        # RNG, which EpochSeed has just reseeded for dropout and augmentation: a resumed run makes its first
        # iterator at another moment than an uninterrupted one.
        options = dict(
            num_workers=workers, persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(seed),
        )
        if isinstance(dataset, TensorDataset):
            # batch_size=None: each item the sampler yields is a whole batch, gathered by dataset[indices]
            sampler = TensorBatchSampler(len(dataset), self.batch_size, seed if shuffle else None, self.resume_point)
            return DataLoader(dataset, batch_size=None, sampler=sampler, **options)
        sampler = EpochShuffleSampler(len(dataset), seed, self.resume_point, self.batch_size) if shuffle else None
        if isinstance(dataset, IterableDataset):
            return DataLoader(dataset, batch_size=self.batch_size, **options)
        # In-memory tensors above cannot be corrupt; samples read from files are named when they fail.
        if split == "train" and self.skipped.budget > 0:
            named = NamedSamples(dataset, split, self.skipped)
            collate = partial(collate_skipping, collate=self.collate_fn) if self.collate_fn else collate_skipping
            return DataLoader(named, batch_size=self.batch_size, sampler=sampler, collate_fn=collate, **options)
        return DataLoader(NamedSamples(dataset, split), batch_size=self.batch_size, sampler=sampler,
                          collate_fn=self.collate_fn, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, "train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, "val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, "test", shuffle=False)


class TaskModel(LightningModule):
    """Base LightningModule of every task.

    Subclasses build their network in `__init__(self, optimizer, config)` and pass it on with
    `super().__init__(model, optimizer, config)`. The network is wrapped in a GroupedModel (weight
    decay / no decay groups) unless the task wrapped it itself to declare its own groups.
    """

    def __init__(self, model: torch.nn.Module, optimizer: Any, config: Any):
        super().__init__()
        self.model = model if isinstance(model, GroupedModel) else GroupedModel(model)
        self.optimizer_factory = optimizer
        self.config = config
        self._log_every = max(1, int(config.engine.log_every_n_steps))

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets `_current_fx_name` before and after every hook it calls, about 50 times a step;
        # nn.Module.__setattr__ first looks for a parameter, buffer or submodule of that name, which
        # adds up to a tenth of a small model's step. A hook name is never one of those.
        if name == "_current_fx_name":
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def configure_optimizers(self) -> Any:
        return self.optimizer_factory(self.model, total_steps=int(self.trainer.estimated_stepping_batches))

    @property
    def sync_dist(self) -> bool:
        """Reduce logged values over devices only when there are several."""
        return self.trainer is not None and self.trainer.world_size > 1

    def log_train_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        """Log the training loss every `engine.log_every_n_steps` steps: logging every step of a small
        model costs more than the step itself. Lightning writes a step's logged values only when
        (step + 1) is a multiple of the trainer's interval (steps 49, 99, ...; the engine caps it at one
        epoch's steps, callbacks.LoggingInterval): log on those steps, or nothing reaches logs/metrics.csv."""
        every = self._log_every
        if self._trainer is not None and self._trainer.log_every_n_steps > 0:
            every = min(every, self._trainer.log_every_n_steps)
        if (self.global_step + 1) % every == 0:
            self.log("train_loss", loss.detach(), on_step=True, on_epoch=False, batch_size=batch_size)

    def log_scalars(self, values: dict[str, Any], batch_size: int, prog_bar: bool = False) -> None:
        """Log epoch-level scalars (averaged over batches weighted by `batch_size`)."""
        self.log_dict(
            values, on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=self.sync_dist, prog_bar=prog_bar
        )

    def save_figure(self, figure: Any, name: str, caption: str = "") -> Path | None:
        """Save a matplotlib Figure of the checkpoint being tested as `<run dir>/figures/<best|last>/<name>.png`,
        with `caption` beside it (`<name>.txt`); return its path.

        Call it from a test hook (e.g. `on_test_epoch_end`): the run tests its best and its last checkpoint,
        and each gets its own folder, so `framework plot` and `framework report` show the pictures of the
        checkpoint they report (`evaluation.checkpoint`) for each optimizer's chosen configuration. Does
        nothing (returns None) outside a run directory (`framework estimate`, `--sanity`) and on every
        process but the first.
        """
        run_dir = self.config["run"].get("dir") if "run" in self.config else None
        if not run_dir or self._trainer is None or not self.trainer.is_global_zero:
            return None
        tested = Path(self.trainer.ckpt_path or "last.ckpt").name
        folder = figures_dir(Path(run_dir), "last" if tested.startswith("last") else "best")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        # written under a temporary name and renamed, as every file of a run directory is: a killed run
        # never leaves half a picture for the report to embed
        partial = folder / f".{name}.tmp.png"
        figure.savefig(partial, dpi=100)
        partial.replace(path)
        atomic_write_text(path.with_suffix(".txt"), caption or name)
        return path

    def activations(self, batch: Any) -> dict[str, torch.Tensor]:
        """Debugging hook: internal tensors of one batch, by name (e.g. "features", "logits",
        "probabilities").

        Contract: `batch` is a batch as the task's data loaders yield it (on the model's device); return
        a dict of tensors whose first dimension is the batch's size. The engine calls it in eval mode
        under torch.no_grad() (`framework.training.activations.batch_activations`, `framework evaluate --activations`),
        so it must not change the model. Tasks that do not override it expose nothing.
        """
        raise NotImplementedError(
            f"task '{self.config.task.name}' exposes no activations: define {type(self).__name__}.activations(batch)"
        )

    # the file types `framework predict` takes from a folder or a glob, e.g. (".png", ".jpg")
    predict_suffixes: tuple[str, ...] = ()

    def predict_files(self, files: list[Path], output: Path, datamodule: Any) -> list[Path]:
        """Prediction hook (`framework predict`): read `files` (existing files, each with one of
        `predict_suffixes` when they came from a folder), predict, write the predictions in the task's
        usual formats under the folder `output` and return the paths written.

        Contract: the engine calls it once, with the trained weights loaded, in eval mode and under
        torch.no_grad(), on the model's device. `datamodule` is the task's data module as built for the
        run (its evaluation transforms, collate function, class names). A file that cannot be read is a
        FrameworkError naming it. Tasks that do not override it cannot predict.
        """
        raise NotImplementedError(f"task '{self.config.task.name}' cannot predict: define "
                                  f"{type(self).__name__}.predict_files(files, output, datamodule)")
