"""Debugging hooks: a task's internal activations for a batch (`TaskModel.activations`, whose contract
is documented there) and the model summary (callbacks.model_summary, written into each run directory)."""

from __future__ import annotations

from typing import Any

import torch

from framework.errors import FrameworkError


def batch_activations(model: Any, batch: Any) -> dict[str, torch.Tensor]:
    """`model.activations(batch)` in eval mode without gradients, checked against the contract: a dict
    of tensors by name, each with the batch as its first dimension. The model's mode is restored."""
    from lightning.fabric.utilities.apply_func import move_data_to_device

    from framework.training.callbacks import batch_size_of

    task = model.config.task.name
    batch = move_data_to_device(batch, model.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            values = model.activations(batch)
    finally:
        model.train(was_training)
    size = batch_size_of(batch)
    if not isinstance(values, dict) or not values:
        raise FrameworkError(f"task '{task}': activations() must return a non-empty dict of tensors, got {type(values).__name__}")
    for name, value in values.items():
        if not isinstance(value, torch.Tensor) or value.dim() == 0 or len(value) != size:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise FrameworkError(f"task '{task}': activations()['{name}'] must be a tensor whose first dimension is "
                                 f"the batch size {size}, got {shape}")
    return {str(name): value.detach().cpu() for name, value in values.items()}
