"""The largest batch that fits and the batch with the best throughput (`framework tune-batch`).

A doubling search through the task's real training step: micro-batches start, 2 x start, 4 x start, ...
each trained for warm-up + `steps` optimizer steps in a short Lightning fit on one device (the task's
model, data module, optimizer plugin, precision and callbacks that change its step), until a size does
not fit: on a GPU, CUDA runs out of memory; on a CPU, where memory rarely runs out first, the size
passes `max_batch`. Sizes above the training set's length are not tried (every batch would be the
whole set). Lightning's own finder (Tuner.scale_batch_size) needs a settable `batch_size` attribute,
which the framework's batch-size rule derives from the config instead, hence this search.

What is measured is the micro-batch one device processes (framework/config/batch_size.py): the
`task.batch_size` of a run is micro-batch x engine.devices x engine.accumulate_grad_batches. Per size:
the median step time and median samples/s of the timed steps (counting the samples each step really
had: the last batch of an epoch may be smaller), data loading included, a GPU synchronised at each
step's end; on a GPU the peak memory torch allocated (torch.cuda.max_memory_allocated, reset per size).
A throwaway fit comes first: the first fit of a process pays one-time costs (lazy imports, allocations).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

from framework.config import Node
from framework.config.batch_size import processes
from framework.config.grid import RunSpec
from framework.config.registry import Registry

WARMUP_STEPS = 5  # allocations, lazy initialisation and autotuning happen in the first steps: not timed


@dataclass
class Trial:
    micro_batch: int
    task_batch_size: int  # micro_batch x engine.devices x engine.accumulate_grad_batches
    fits: bool
    step_s: float | None = None
    samples_per_s: float | None = None
    peak_memory_bytes: int | None = None
    note: str = ""


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


class _ThroughputClock:
    """Time and samples of each training step after the warm-up (a Lightning callback): a step runs from
    the end of the previous batch to the end of this one (loading the batch included)."""

    def __init__(self, cuda: bool):
        from lightning.pytorch import Callback

        from framework.training.callbacks import batch_size_of

        clock = self

        class Hooks(Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                clock.tick(trainer.global_step > WARMUP_STEPS, batch_size_of(batch))

        self.callback, self.cuda = Hooks(), cuda
        self.times: list[float] = []
        self.samples: list[int] = []
        self.last: float | None = None

    def tick(self, timed: bool, samples: int) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        now = time.perf_counter()
        if timed and self.last is not None:
            self.times.append(now - self.last)
            self.samples.append(samples)
        self.last = now

    def medians(self) -> tuple[float, float] | None:
        """Median step seconds and median samples/s of a step (the median sets aside a step slowed by
        another process on a shared machine; per-step rates count a short last batch as what it is)."""
        if not self.times:
            return None
        return (statistics.median(self.times),
                statistics.median(n / max(t, 1e-9) for n, t in zip(self.samples, self.times)))


def measure_size(spec: RunSpec, registry: Registry, micro: int, steps: int) -> Trial:
    """Train WARMUP_STEPS + `steps` steps of `spec` with micro-batch `micro` on one device."""
    import lightning.pytorch as pl
    import torch

    from framework.training.optimizer_modes import OptimizerModes
    from framework.training.run import load_task
    from framework.training.trainer_options import device_type, trainer_arguments

    config, engine = spec.config, spec.config["engine"]
    parts = processes(engine) * engine["accumulate_grad_batches"]
    cuda = device_type(engine["accelerator"]) == "cuda"
    trial = Trial(micro, micro * parts, fits=True)
    with tempfile.TemporaryDirectory(prefix="framework-tune-batch-") as tmp:
        measured = Node({**config, "task": {**config["task"], "batch_size": micro},
                         "engine": {**engine, "devices": 1, "nodes": 1, "accumulate_grad_batches": 1},
                         "run": {"id": spec.run_id, "dir": tmp}})
        clock = _ThroughputClock(cuda)
        try:
            model, datamodule = load_task(measured, registry)
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            trainer = pl.Trainer(**trainer_arguments(measured.engine), logger=False, enable_checkpointing=False,
                                 enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp,
                                 max_steps=WARMUP_STEPS + 1 + steps, max_epochs=-1, limit_val_batches=0,
                                 num_sanity_val_steps=0, callbacks=[clock.callback, OptimizerModes()])
            trainer.fit(model, datamodule=datamodule)
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc) and not isinstance(exc, MemoryError):
                raise
            trial.fits, trial.note = False, "out of memory"
            return trial
        finally:
            if cuda:
                torch.cuda.empty_cache()
    if clock.medians():
        trial.step_s, trial.samples_per_s = clock.medians()
    if cuda:
        trial.peak_memory_bytes = int(torch.cuda.max_memory_allocated())
    return trial


def train_length(spec: RunSpec, registry: Registry) -> int | None:
    """Samples in the task's training split (None when it has no length)."""
    from framework.training.run import load_task

    with tempfile.TemporaryDirectory(prefix="framework-tune-batch-") as tmp:
        _, datamodule = load_task(Node({**spec.config, "run": {"id": spec.run_id, "dir": tmp}}), registry)
        datamodule.prepare_data()
        datamodule.setup("fit")
        try:
            return len(datamodule.data_train)
        except TypeError:
            return None


def search(spec: RunSpec, registry: Registry, start: int, max_batch: int | None, steps: int,
           report: Callable[[str], Any] | None = None) -> list[Trial]:
    """Trials of micro-batches start, 2 start, ... until one does not fit or the next passes `max_batch`
    or the training set's length (see the module docstring)."""
    from framework.training.run import quiet_lightning

    quiet_lightning()
    length = train_length(spec, registry)
    measure_size(spec, registry, start, 1)  # the first fit of a process pays one-time costs: not kept
    limit = min(x for x in (max_batch, length) if x is not None) if (max_batch or length) else None
    trials, micro = [], start
    while limit is None or micro <= limit:
        if report:
            report(f"micro-batch {micro}: {WARMUP_STEPS} warm-up + {steps} timed steps")
        trials.append(measure_size(spec, registry, micro, steps))
        if not trials[-1].fits:
            break
        micro *= 2
    return trials


def best(trials: list[Trial]) -> Trial | None:
    """The trial with the most samples per second."""
    measured = [t for t in trials if t.fits and t.samples_per_s]
    return max(measured, key=lambda t: t.samples_per_s) if measured else None


def rows(trials: list[Trial]) -> tuple[list[str], list[list[str]]]:
    header = ["micro-batch", "task.batch_size", "step (ms)", "samples/s", "peak memory (MB)", "note"]
    body = []
    for t in trials:
        body.append([str(t.micro_batch), str(t.task_batch_size),
                     f"{t.step_s * 1e3:.3g}" if t.step_s else "-",
                     f"{t.samples_per_s:.4g}" if t.samples_per_s else "-",
                     f"{t.peak_memory_bytes / 2**20:.4g}" if t.peak_memory_bytes is not None else "-", t.note])
    return header, body
