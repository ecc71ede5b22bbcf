"""Checkpoint-and-requeue on SLURM timeouts and preemption, for runs inside a submitit job.

SLURM warns a job before its time limit, and a preempting scheduler warns it before taking the node,
with submitit's signal (USR2 by default; preemption sends SIGTERM first). submitit's own handler calls
the job's `checkpoint()`, requeues the job with `scontrol requeue` and exits, all from inside the signal
handler, that is in the middle of whatever Python was doing: saving the model there could capture half
an optimizer step. So during training this callback only notes the signal and hands over to submitit's
handler at the end of the current training step, after saving `last.ckpt` with the position reached
in the epoch; the resumed job skips the batches already trained on (`task.ResumePoint`). Outside the
training steps (validation, testing) it hands over at once, and the run resumes from the last
checkpoint saved at an epoch end.

Lightning treats SIGTERM as "stop now" (it raises SIGTERMException); under submitit SIGTERM only
announces the USR2 that follows, so it is ignored here as submitit itself does.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback


def requeue_signal() -> signal.Signals:
    """submitit's checkpoint signal (it reads SUBMITIT_PREEMPT_SIGNAL, USR2 by default)."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper().removeprefix("SIG"))


class PreemptionCheckpoint(Callback):
    """Save a step-exact checkpoint when SLURM announces a timeout or preemption, then let submitit
    requeue the job. With several devices the ranks agree every `every_n_steps` steps to stop together
    (saving a checkpoint is collective)."""

    def __init__(self, checkpoint_path: Path, every_n_steps: int = 8):
        self.checkpoint_path, self.every_n_steps = Path(checkpoint_path), every_n_steps
        self.submitit_handler: Any = None
        self.requested = False
        self.in_training = False
        self.resume_point: tuple[int, int] | None = None  # (epoch, batches done) saved in the checkpoint
        self._loaded: tuple[int, int] | None = None

    # -- signals ------------------------------------------------------------------------------------
    def _install(self) -> None:
        """(Re)install the handlers: Lightning registers its own at the start of every fit/validate/test."""
        current = signal.getsignal(requeue_signal())
        if current != self._on_signal:
            self.submitit_handler = current
            signal.signal(requeue_signal(), self._on_signal)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        print("framework: SIGTERM received; waiting for the checkpoint signal that follows it", file=sys.stderr, flush=True)

    def _on_signal(self, signum, frame) -> None:
        if self.in_training:
            self.requested = True  # acted on at the end of the current step
        else:
            self._hand_over(signum, frame)

    def _hand_over(self, signum, frame) -> None:
        """submitit's handler: calls the job's checkpoint(), requeues, exits (on rank 0)."""
        if callable(self.submitit_handler):
            self.submitit_handler(signum, frame)

    # -- Lightning hooks ----------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        if self._loaded is not None and trainer.datamodule is not None and hasattr(trainer.datamodule, "resume_point"):
            trainer.datamodule.resume_point.set(*self._loaded)

    def on_train_start(self, trainer, pl_module) -> None:
        self._install()

    def on_validation_start(self, trainer, pl_module) -> None:
        self._install()

    def on_test_start(self, trainer, pl_module) -> None:
        self._install()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.in_training = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.in_training = False
        if self.requested:  # arrived during the last step: the epoch-end checkpoint follows shortly
            self.requested = False
            self._hand_over(requeue_signal(), None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        requested = self.requested
        if trainer.world_size > 1:
            if trainer.global_step % self.every_n_steps:
                return
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if not requested:
            return
        self.resume_point = (trainer.current_epoch, batch_idx + 1)
        trainer.save_checkpoint(self.checkpoint_path)
        self.requested = self.in_training = False
        if trainer.global_rank == 0:
            self._hand_over(requeue_signal(), None)
        sys.exit(-1)  # the other ranks (and rank 0 if submitit did not exit) stop with the job

    def state_dict(self) -> dict[str, Any]:
        return {"resume_point": list(self.resume_point) if self.resume_point else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        point = state_dict.get("resume_point")
        self._loaded = tuple(point) if point else None
