"""Switch optimizers that have train and eval modes (schedule-free methods) around evaluation.

A schedule-free optimizer (Defazio et al., 2024) keeps two points. During training the model holds `y`,
where gradients are taken; its score and the weights worth keeping are those of the average `x`.
`optimizer.eval()` replaces `y` by `x` in the parameters, in place, and `optimizer.train()` undoes it.
Any optimizer with callable `train` and `eval` methods is switched (duck typing, no name checks), so a
new optimizer of that kind needs no engine change. Both methods must be idempotent: called in the mode
the optimizer is already in, they do nothing (schedulefree's do; they record the mode in the optimizer's
own state).

The rule is that the model holds eval weights whenever it is not taking training steps:

- eval at on_validation_start, on_train_epoch_end, on_train_end and on_exception (and at test/predict
  start, where it finds nothing left to do): validation scores are those of `x`, and so are the checkpoints.
  Lightning writes them after validation at the end of an epoch, and its ModelCheckpoint hooks run
  after every other callback's, so each checkpoint holds `x` with an optimizer state that says "eval".
  Switching back to train at on_validation_end would save `y` instead.
- train at on_train_batch_start, before the forward pass (the gradient must be taken at `y`), once
  after each switch to eval. Lazily, because validation may also run mid-epoch.

Resuming: the checkpoint holds `x` and an optimizer state in eval mode; the first batch's `train()` turns
`x` back into `y`. That is exactly what an uninterrupted run does after writing the same checkpoint,
so both continue identically. Testing a checkpoint: its weights are already `x`, and nothing is switched
(the callback switches only what it put in train mode itself), so the end-of-training state of the
optimizer never touches weights loaded from an earlier epoch.
"""

from __future__ import annotations

import warnings
from typing import Any

from lightning.pytorch import Callback


def has_modes(optimizer: Any) -> bool:
    """Whether `optimizer` has train and eval modes to switch."""
    return callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval", None))


class OptimizerModes(Callback):
    """Call `train()` / `eval()` on every optimizer that has them, so evaluation and checkpoints use the
    evaluation weights (see the module docstring for when and why)."""

    def __init__(self) -> None:
        self._training = False  # whether this callback last put the optimizers in train mode

    def _switch(self, trainer, training: bool) -> None:
        if self._training == training:
            return
        for optimizer in trainer.optimizers:
            if has_modes(optimizer):
                (optimizer.train if training else optimizer.eval)()
        self._training = training

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._training:
            self._switch(trainer, True)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._switch(trainer, False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._switch(trainer, False)  # an epoch without validation still ends in eval mode for its checkpoint

    def on_train_end(self, trainer, pl_module) -> None:
        self._switch(trainer, False)  # e.g. max_steps reached mid-epoch: the model is left with `x`

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._switch(trainer, False)  # a failed fit also leaves `x`, and any checkpoint Lightning writes now holds it

    def on_test_start(self, trainer, pl_module) -> None:
        self._switch(trainer, False)

    def on_predict_start(self, trainer, pl_module) -> None:
        self._switch(trainer, False)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        # The state is already collected when this hook runs: too late to switch. A checkpoint written
        # between training steps (not one of the engine's) still resumes correctly, since the optimizer
        # state records train mode, but its weights are `y`, not the ones to evaluate.
        if self._training and any(has_modes(o) for o in trainer.optimizers):
            warnings.warn(
                f"checkpoint at step {trainer.global_step} was written while the optimizer was in train mode: "
                "it holds the training weights, not the evaluation weights (see framework/training/optimizer_modes.py)",
                stacklevel=2,
            )


__all__ = ["OptimizerModes", "has_modes"]
