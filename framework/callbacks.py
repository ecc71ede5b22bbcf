"""Callbacks the engine adds to every run: divergence check, per-epoch seeding, training timer."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback

from framework.errors import DivergedError


class DivergenceCheck(Callback):
    """Stop a run as diverged the moment its training loss is NaN or infinite."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            raise DivergedError(
                f"training loss is {loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch})"
            )


class EpochSeed(Callback):
    """Reseed every RNG at the start of each epoch from (seed, epoch).

    Lightning checkpoints do not hold RNG states, so without this a run resumed after a kill would draw
    different dropout masks and augmentations from one that was never interrupted.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        value = (self.seed * 1_000_003 + trainer.current_epoch) % 2**32
        random.seed(value)
        np.random.seed(value)
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
