"""The engine's training options as Lightning Trainer arguments, decided in one place.

`run.build` (training), `sanity` (the pre-grid check) and `estimate` (the cost projection) all train
through these, so an option means the same thing everywhere: precision (with the fallback where the
device lacks it), gradient accumulation, gradient clipping, deterministic mode and early stopping.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

FULL_PRECISIONS = ("32-true", "64-true")  # every device has these; the others (config.PRECISIONS) may fall back


def device_type(accelerator: str) -> str:
    """The kind of device Lightning will pick for `engine.accelerator`: cuda, mps or cpu (or the name given)."""
    if accelerator in ("auto", "gpu"):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    return accelerator


def resolve_precision(requested: str, device: str) -> str:
    """The precision a run actually trains in. Half precision where the device cannot do it is not an
    error (a grid written for GPUs still runs on a laptop): a warning, and full 32-bit precision.

    CPUs get 32-true for every half precision: autocast on CPU is slow and not what a GPU run computes.
    bf16 on a CUDA GPU without bf16 support (before Ampere) also falls back to 32-true, not to fp16,
    which would need loss scaling the user did not ask for.
    """
    if requested in FULL_PRECISIONS:
        return requested
    unsupported = device == "cpu" or (device == "cuda" and requested.startswith("bf16") and not torch.cuda.is_bf16_supported())
    if unsupported:
        warnings.warn(
            f"engine.precision={requested} is not supported on this {device}; training in 32-true (full precision). "
            f"The run_id still records {requested}: its scores are full-precision scores (scores.json train.precision)",
            stacklevel=2,
        )
        return "32-true"
    return requested


def trainer_arguments(engine: Any) -> dict[str, Any]:
    """Lightning Trainer keyword arguments for the `engine` section's training options."""
    clip = float(engine.gradient_clip_val)
    return dict(
        accelerator=engine.accelerator,
        devices=engine.devices,
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
