# python -m pytest tests/test_debug_hooks.py
"""Every discovered task: its data passes the engine's checks at setup, its model summary lists its
modules, and its activations (when it exposes them) honour the TaskModel.activations contract."""

from __future__ import annotations

import pytest

from framework.config import Node, parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.training.activations import batch_activations
from framework.training.callbacks import model_summary
from framework.training.conformance import REFERENCE_SIZES
from framework.training.run import load_task
from framework.training.task import TaskModel

REGISTRY = Registry()
TASKS = sorted(name for name, plugin in REGISTRY.tasks.items() if plugin.ok)


@pytest.mark.parametrize("task", TASKS)
def test_data_checks_summary_and_activations(task, tmp_path):
    (spec,) = expand(parse_overrides([f"tasks={task}", f"engine.output_dir={tmp_path}"]), REGISTRY)
    model, datamodule = load_task(Node({**spec.config, "run": {"id": spec.run_id, "dir": str(tmp_path)}}), REGISTRY)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.val_dataloader()))  # checks the split first: not empty, first samples load
    assert "Total params" in model_summary(model)
    if type(model).activations is TaskModel.activations:
        with pytest.raises(NotImplementedError, match=f"task '{task}' exposes no activations"):
            model.activations(batch)
        return
    was_training = model.training
    values = batch_activations(model, batch)  # raises unless: a dict of tensors, batch first
    assert values
    assert model.training == was_training


def test_vision_activations_are_the_networks_per_image_outputs(tmp_path):
    """The vision tasks share one hook: every output tensor with one entry per image; a model whose outputs
    are per-image lists (Mask R-CNN's detections) says it has none, in one line."""
    sizes = REFERENCE_SIZES["coco_instance"]  # the bundled scenes' size (the recipe's 1024 crops take minutes)
    for model_name, expected in (("tiny", {"class_queries_logits", "masks_queries_logits"}), ("mask_rcnn-tiny", None)):
        (spec,) = expand(parse_overrides(["tasks=coco_instance", f"task.model.name={model_name}", *sizes,
                                          f"engine.output_dir={tmp_path}"]), REGISTRY)
        model, datamodule = load_task(Node({**spec.config, "run": {"id": spec.run_id, "dir": str(tmp_path)}}), REGISTRY)
        datamodule.prepare_data()
        datamodule.setup("fit")
        batch = next(iter(datamodule.val_dataloader()))
        if expected is None:
            with pytest.raises(NotImplementedError, match="model mask_rcnn returns no per-image tensors"):
                batch_activations(model, batch)
        else:
            assert expected <= set(batch_activations(model, batch))
