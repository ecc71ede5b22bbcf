"""What the engine adds to every run's Trainer: divergence check, per-epoch seeding, training and optimizer-step
timers, checkpoint metadata, the model summary file, early stopping that survives a resume, a logging
interval that fits the epoch, and a profiler that costs nothing when nothing is profiled."""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.profilers import PassThroughProfiler

from framework.errors import DivergedError
from framework.training.task import epoch_seed


class DivergenceCheck(Callback):
    """Stop a run as diverged when its training loss is NaN or infinite.

    On the CPU each step's loss is read as it comes (a float read costs nothing there). On an
    accelerator, reading a value makes the host wait for the device, so the losses are folded into one
    flag on the device, read every `every_n_steps` steps and at the end of each epoch: a diverged run
    stops at most that many steps late.
    """

    def __init__(self, every_n_steps: int = 8):
        self.every_n_steps = every_n_steps
        self._finite: torch.Tensor | None = None  # all losses since step `_first` were finite
        self._first = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        step = trainer.global_step - 1  # the step that computed this loss: global_step counts steps taken
        if loss.device.type == "cpu" and loss.numel() == 1:
            if not math.isfinite(loss.item()):
                raise DivergedError(f"training loss is {loss.item()} at step {step} (epoch {trainer.current_epoch})")
            return
        finite = torch.isfinite(loss.detach()).all()
        if self._finite is None:
            self._finite, self._first = finite, step
        else:
            self._finite = self._finite & finite
        if (step + 1) % self.every_n_steps == 0:
            self._read(trainer, step)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._read(trainer, trainer.global_step - 1)

    def _read(self, trainer, step: int) -> None:
        finite, self._finite = self._finite, None
        if finite is not None and not finite.item():
            raise DivergedError(
                f"training loss became NaN or infinite between steps {self._first} and {step} "
                f"(epoch {trainer.current_epoch})"
            )


class EpochSeed(Callback):
    """Reseed every RNG at the start of each epoch from (seed, epoch).

    Lightning checkpoints do not hold RNG states, so without this a run resumed after a kill would draw
    different dropout masks and augmentations from one that was never interrupted.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        value = epoch_seed(self.seed, trainer.current_epoch)
        random.seed(value)
        np.random.seed(value)
        if trainer.strategy.root_device.type == "cpu":
            # A run on the CPU draws only from the CPU generator. `torch.manual_seed` would also queue
            # seeds for every accelerator, recording a stack trace for each one not yet initialized:
            # about a millisecond an epoch.
            torch.default_generator.manual_seed(value)
        else:
            torch.manual_seed(value)


class LoggingInterval(Callback):
    """Caps the training-loss interval (engine.log_every_n_steps) at the optimizer steps of one epoch, so
    a short run's loss curve is never empty: digits' 20 steps per epoch under the default 50 logged
    nothing in a 2-epoch run. Known only once the training data is set up, hence on_train_start."""

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        batches = trainer.num_training_batches
        if trainer.log_every_n_steps > 0 and math.isfinite(batches):
            steps = max(1, int(batches) // trainer.accumulate_grad_batches)
            trainer.log_every_n_steps = min(trainer.log_every_n_steps, steps)


class LossRecorder(Callback):
    """Each training step's loss, in `losses` (what `training_step` returned: a tensor or {"loss": ...});
    the pre-grid sanity check and the conformance checks read it."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.losses.append(float(loss.detach()))


class ResumableEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping, whose decision to stop is kept by a resumed run.

    The decision is taken at the end of a validation, just before that epoch's last.ckpt is written, and
    Lightning saves the callback's state (`stopped_epoch` included) but not `trainer.should_stop`. A run
    killed after that checkpoint (while its checkpoints are being tested, say) would resume from it and
    train on past the epoch where the uninterrupted run stopped.
    """

    @property
    def state_key(self) -> str:
        # EarlyStopping's own key (it contains the class name): checkpoints written with Lightning's class
        # restore into this one, and the other way round
        return "EarlyStopping" + repr({"monitor": self.monitor, "mode": self.mode})

    def on_train_start(self, trainer, pl_module) -> None:
        if self.stopped_epoch:  # restored from a checkpoint written after the decision (0: not stopped)
            trainer.should_stop = True


def batch_size_of(batch: Any) -> int:
    """Samples in a batch: the length of its first tensor (a batch of several tensors shares it), or of
    a batch object that knows its samples; else Lightning's guess."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return len(batch[0])
    if not isinstance(batch, (dict, tuple, list, str)) and hasattr(batch, "__len__"):
        return len(batch)  # a batch object that knows its samples (framework.vision's Batch)
    from lightning.pytorch.utilities.data import extract_batch_size

    return extract_batch_size(batch)


class _OptimizerStepClock:
    """Time spent inside optimizer steps, apart from forward and backward.

    A step starts when the gradients are ready (`on_before_optimizer_step`, which Lightning calls after
    backward and, with 16-mixed, after unscaling; gradient clipping comes after it and is counted) and
    ends when the optimizer's `step` returns (a step post hook). On the CPU both ends read the wall
    clock. On a GPU both ends record CUDA events, timed by the device itself and read in batches every
    `read_every` steps (one synchronisation, then the elapsed times): synchronising at every step would
    stall the pipeline whose cost is being measured.
    """

    def __init__(self, read_every: int = 64):
        self.seconds, self.count, self.read_every = 0.0, 0, read_every
        self._cuda = False
        self._start: Any = None
        self._events: list[tuple[Any, Any]] = []
        self._handles: list[Any] = []

    def attach(self, optimizers: list[Any], device: torch.device) -> None:
        self.detach()
        self._cuda = device.type == "cuda"
        self._handles = [opt.register_step_post_hook(self._end) for opt in optimizers if hasattr(opt, "register_step_post_hook")]

    def detach(self) -> None:
        self.read()
        for handle in self._handles:
            handle.remove()
        self._handles, self._start = [], None

    def start(self) -> None:
        # A start left without an end is a step the AMP scaler skipped (non-finite gradients): dropped.
        if self._cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def _end(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._start is None:
            return  # a step taken outside Lightning's loop (e.g. by a task's own code)
        if self._cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((self._start, end))
            if len(self._events) >= self.read_every:
                self.read()
        else:
            self.seconds += time.perf_counter() - self._start
            self.count += 1
        self._start = None

    def read(self) -> None:
        """Fold the recorded CUDA event pairs into `seconds` (waits for the last one)."""
        if self._events:
            self._events[-1][1].synchronize()
            self.seconds += sum(start.elapsed_time(end) for start, end in self._events) / 1000
            self.count += len(self._events)
            self._events = []


class TrainTimer(Callback):
    """Wall time spent in training epochs (validation excluded), samples trained on, and the time of the
    optimizer steps on their own (`_OptimizerStepClock`); kept across resumes.

    On a GPU the epoch clock synchronises the device at its start and stop, so the time is the device's
    work and not only the host's queueing.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self.samples = 0
        self.optimizer = _OptimizerStepClock()
        self._start: float | None = None
        self._start_step = 0

    def _sync(self, trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def _stop(self, trainer) -> None:
        if self._start is not None:
            self._sync(trainer)
            self.seconds += time.perf_counter() - self._start
            self.steps += trainer.global_step - self._start_step
            self._start = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.optimizer.attach(trainer.optimizers, trainer.strategy.root_device)

    def on_train_end(self, trainer, pl_module) -> None:
        self.optimizer.detach()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.optimizer.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Each device sees its share of the samples (a distributed sampler splits them evenly).
        self.samples += batch_size_of(batch) * trainer.world_size

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._sync(trainer)
        self._start, self._start_step = time.perf_counter(), trainer.global_step

    def on_validation_start(self, trainer, pl_module) -> None:
        self._stop(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.training or trainer.state.fn == "fit":  # validation inside fit: training resumes
            self._sync(trainer)
            self._start, self._start_step = time.perf_counter(), trainer.global_step

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop(trainer)
        self.optimizer.read()

    def summary(self) -> dict[str, Any]:
        """The timing part of scores.json's "train" entry."""
        self.optimizer.read()
        clock = self.optimizer
        return {
            "time_s": self.seconds,
            "steps": self.steps,
            "step_time_ms": 1000 * self.seconds / self.steps if self.steps else None,
            "samples": self.samples,
            "samples_per_s": self.samples / self.seconds if self.seconds else None,
            "optimizer_step_ms": 1000 * clock.seconds / clock.count if clock.count else None,
            "optimizer_time_fraction": clock.seconds / self.seconds if self.seconds else None,
        }

    def state_dict(self) -> dict[str, Any]:
        self.optimizer.read()
        return {
            "seconds": self.seconds, "steps": self.steps, "samples": self.samples,
            "optimizer_seconds": self.optimizer.seconds, "optimizer_steps": self.optimizer.count,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds = float(state_dict.get("seconds", 0.0))
        self.steps = int(state_dict.get("steps", 0))
        self.samples = int(state_dict.get("samples", 0))
        self.optimizer.seconds = float(state_dict.get("optimizer_seconds", 0.0))
        self.optimizer.count = int(state_dict.get("optimizer_steps", 0))


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler without its cost: Lightning enters `profiler.profile(name)` around
    every hook it calls, some 25 times a step, and the default builds a generator-based context manager
    each time although it records nothing. This one hands out one shared no-op context."""

    _nothing = nullcontext()

    def profile(self, action_name: str) -> nullcontext:
        return self._nothing


class CheckpointMetadata(Callback):
    """Make every checkpoint describe itself: the resolved config, the optimizer's hyperparameters and
    the class names (when the task has them), under checkpoint["framework"].

    Only plain values (dicts, lists, strings, numbers) are stored, so the checkpoint still loads with
    `torch.load(weights_only=True)`. A callback rather than a TaskModel hook, so a task that overrides
    `on_save_checkpoint` cannot drop it.
    """

    def __init__(self, config: Any):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        config = self.config.to_dict()
        names = getattr(pl_module, "class_names", None) or getattr(trainer.datamodule, "class_names", None)
        checkpoint["framework"] = {
            "task": config["task"]["name"],
            "optimizer": config["optimizer"]["name"],
            "run_id": config.get("run", {}).get("id"),
            "config": config,
            "optimizer_hyperparameters": config["optimizer"],
            "class_names": [str(name) for name in names] if names is not None else None,
        }


def model_summary(model: torch.nn.Module, max_depth: int = 3) -> str:
    """Parameter counts per module (to `max_depth` levels), as text."""
    from lightning.pytorch.utilities.model_summary import ModelSummary

    return str(ModelSummary(model, max_depth=max_depth)) + "\n"


class ModelSummaryFile(Callback):
    """Write the model's summary (parameter counts per module) to <run dir>/model_summary.txt when
    training starts."""

    def __init__(self, path: Any):
        self.path = path

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            from framework.config.file_io import atomic_write_text

            atomic_write_text(self.path, model_summary(pl_module))
