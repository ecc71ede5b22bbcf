"""The engine's training options as Lightning Trainer arguments, decided in one place.

`run.build` (training), `sanity` (the pre-grid check) and `estimate` (the cost projection) all train
through these, so an option means the same thing everywhere: precision (with the fallback where the
device lacks it), gradient accumulation, gradient clipping, deterministic mode and early stopping.
"""

from __future__ import annotations

from typing import Any

# The device and precision rules live in framework.config.devices: the run_id (framework.config.grid) must
# name the device kind and precision a run trains in, and config may not import training.
from framework.config.devices import FULL_PRECISIONS, device_type, resolve_precision

__all__ = ["FULL_PRECISIONS", "device_type", "early_stopping", "resolve_precision", "trainer_arguments"]


def trainer_arguments(engine: Any) -> dict[str, Any]:
    """Lightning Trainer keyword arguments for the `engine` section's training options."""
    clip = float(engine.gradient_clip_val)
    return dict(
        accelerator=engine.accelerator,
        devices=engine.devices,
        num_nodes=engine.get("nodes", 1),  # multi-node DDP: Lightning reads each process's rank from SLURM
        precision=resolve_precision(engine.precision, device_type(engine.accelerator)),
        deterministic=engine.deterministic,
        accumulate_grad_batches=engine.accumulate_grad_batches,
        gradient_clip_val=clip if clip > 0 else None,
        gradient_clip_algorithm=engine.gradient_clip_algorithm if clip > 0 else None,
    )


def early_stopping(config: Any):
    """Lightning's EarlyStopping on the task's target metric, or None when `engine.early_stopping_patience`
    is 0. `patience` counts validations (every `engine.check_val_every_n_epoch` epochs) without an
    improvement larger than `engine.early_stopping_min_delta`. Its state is saved in checkpoints, so a
    resumed run keeps counting where it stopped, and one resumed after the decision to stop stops too."""
    from framework.training.callbacks import ResumableEarlyStopping

    engine, task = config.engine, config.task
    if engine.early_stopping_patience <= 0:
        return None
    return ResumableEarlyStopping(
        monitor=task.target_metric,
        mode=task.target_metric_mode,
        patience=engine.early_stopping_patience,
        min_delta=engine.early_stopping_min_delta,
        # A NaN validation metric is not a reason to stop quietly as "done": a non-finite training loss
        # already stops the run as diverged.
        check_finite=False,
        strict=True,  # a target_metric the task never logs is an error, not a run that never stops
    )
