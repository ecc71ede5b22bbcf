"""What the engine adds to every run's Trainer: divergence check, per-epoch seeding, training timer,
and a profiler that costs nothing when nothing is profiled."""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback
from lightning.pytorch.profilers import PassThroughProfiler

from framework.errors import DivergedError
from framework.task import epoch_seed


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


class TrainTimer(Callback):
    """Wall time spent in training epochs, validation excluded; kept across resumes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
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

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "steps": self.steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds = float(state_dict.get("seconds", 0.0))
        self.steps = int(state_dict.get("steps", 0))


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler without its cost: Lightning enters `profiler.profile(name)` around
    every hook it calls, some 25 times a step, and the default builds a generator-based context manager
    each time although it records nothing. This one hands out one shared no-op context."""

    _nothing = nullcontext()

    def profile(self, action_name: str) -> nullcontext:
        return self._nothing
