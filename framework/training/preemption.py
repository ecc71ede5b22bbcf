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

SIGTERM comes alone from `scancel` (and from a preempting scheduler that sends no checkpoint signal),
or just before USR2 from one that does. Lightning would stop at once (SIGTERMException) and submitit
ignores it. Here, during training, a SIGTERM not followed by USR2 within `TERM_GRACE_S` stops the run at
the end of the current step with a step-exact checkpoint, recorded as failed ("terminated"), so the
next `framework run` resubmits it and it resumes from that step. Outside the training steps SIGTERM is
ignored and SLURM's KillWait ends the job; it resumes from the last epoch-end checkpoint.

The same step-exact stop serves a run whose lock (framework/training/run_lock.py) another process took over, in
every executor (signals are only handled inside a SLURM job): it stops at the end of the current step
and raises `LockLost`. Its checkpoint is saved as last.ckpt only when it is further than the one there:
the new holder owns the run directory, and its progress is never replaced by an earlier position.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback

from framework.errors import FrameworkError

TERM_GRACE_S = 2.0  # how long a SIGTERM waits for the USR2 of a checkpointing scheduler


class Terminated(FrameworkError):
    """The run was stopped by SIGTERM (scancel, or preemption without a checkpoint signal)."""


class LockLost(FrameworkError):
    """Another process took the run's lock over: this one stopped, and records nothing more."""


def requeue_signal() -> signal.Signals:
    """submitit's checkpoint signal (it reads SUBMITIT_PREEMPT_SIGNAL, USR2 by default)."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper().removeprefix("SIG"))


class PreemptionCheckpoint(Callback):
    """Save a step-exact checkpoint when SLURM announces a timeout or preemption (`signals`: inside a
    SLURM job), then let submitit requeue the job; stop at a step when `watch` (a run_lock.LockWatch) says
    the run's lock was taken over. With several devices the ranks agree every `every_n_steps` steps to
    stop together (saving a checkpoint is collective)."""

    def __init__(self, checkpoint_path: Path, every_n_steps: int = 8, signals: bool = True, watch: Any = None):
        self.checkpoint_path, self.every_n_steps = Path(checkpoint_path), every_n_steps
        self.signals, self.watch = signals, watch
        self.submitit_handler: Any = None
        self.requested = False
        self.terminated_at: float | None = None  # when a SIGTERM arrived (training stops after the grace)
        self.in_training = False
        self.resume_point: tuple[int, int] | None = None  # (epoch, batches done) saved in the checkpoint
        self._loaded: tuple[int, int] | None = None

    # -- signals ------------------------------------------------------------------------------------
    def _install(self) -> None:
        """(Re)install the handlers: Lightning registers its own at the start of every fit/validate/test."""
        if not self.signals:
            return  # outside a SLURM job signals keep their usual meaning (Ctrl-C, kill)
        current = signal.getsignal(requeue_signal())
        if current != self._on_signal:
            self.submitit_handler = current
            signal.signal(requeue_signal(), self._on_signal)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        print(f"framework: SIGTERM received; stopping after the current step unless a checkpoint signal follows "
              f"within {TERM_GRACE_S:g} s", file=sys.stderr, flush=True)
        if self.terminated_at is None:
            self.terminated_at = time.monotonic()

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
        terminate = self.terminated_at is not None and time.monotonic() - self.terminated_at > TERM_GRACE_S
        lost = self.watch is not None and self.watch.lost()
        if trainer.world_size > 1:
            if trainer.global_step % self.every_n_steps:
                return
            # only rank 0 holds the lock (the others may not know it): any rank's verdict stops them all
            requested, terminate, lost = [trainer.strategy.reduce_boolean_decision(flag, all=False)
                                          for flag in (requested, terminate, lost)]
        if not (requested or terminate or lost):
            return
        self.resume_point = (trainer.current_epoch, batch_idx + 1)
        self.in_training = False
        if lost:  # before a requeue: the job's checkpoint() would write status.json, the new holder's now
            self._stop_lost(trainer)
        trainer.save_checkpoint(self.checkpoint_path)
        if not requested:
            raise Terminated(f"terminated by SIGTERM (scancel, or preemption without a checkpoint signal) at step "
                             f"{trainer.global_step}; the next `framework run` resumes from this step")
        self.requested = False
        if trainer.global_rank == 0:
            self._hand_over(requeue_signal(), None)
        sys.exit(-1)  # the other ranks (and rank 0 if submitit did not exit) stop with the job

    def _stop_lost(self, trainer) -> None:
        # rank 0's reading decides for all: saving is collective, and the ranks must agree to call it
        ahead = trainer.strategy.broadcast(self._ahead_of_saved(trainer.global_step), src=0)
        if ahead:
            trainer.save_checkpoint(self.checkpoint_path)
        raise LockLost(f"the run's lock was taken over by another process; stopped at step {trainer.global_step}"
                       + (", saved in last.ckpt" if ahead else " (last.ckpt there is further: left as it is)"))

    def _ahead_of_saved(self, step: int) -> bool:
        """Whether `step` is further than the last.ckpt in the run directory (or there is none)."""
        import torch

        try:
            saved = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
            return step > int(saved["global_step"])
        except FileNotFoundError:
            return True
        except (OSError, RuntimeError, EOFError, KeyError, pickle.UnpicklingError):
            return True  # unreadable (written atomically, so damaged): ours is the better resume point

    def state_dict(self) -> dict[str, Any]:
        return {"resume_point": list(self.resume_point) if self.resume_point else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        point = state_dict.get("resume_point")
        self._loaded = tuple(point) if point else None
