# python -m pytest tests/test_conformance.py
"""Every discovered task x optimizer loads and takes one real training step on CPU.

Parametrized over the registry, so a new plugin folder is tested the moment it exists.
"""

from __future__ import annotations

import pytest

from framework.config import parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry

REGISTRY = Registry()
PAIRS = [(t, o) for t in sorted(REGISTRY.tasks) for o in sorted(REGISTRY.optimizers)]
# Tasks whose defaults are a recipe at real-data size (1024 crops) step at the bundled data's size here:
# one step at 1024 takes minutes on a CPU, and the contract under test does not depend on the size
_CPU_SIZES = ["task.crop_size=128", "task.eval_short=128", "task.eval_max_size=512"]
SMALL = {"coco_panoptic": _CPU_SIZES, "coco_instance": _CPU_SIZES}


def test_every_bundled_plugin_is_sound():
    broken = {f"{p.kind} {p.name}": p.problem for kind in REGISTRY.plugins.values() for p in kind.values() if not p.ok}
    assert not broken
    assert {"digits", "template"} <= set(REGISTRY.tasks)
    assert {"adamw_baseline", "sgd_baseline"} <= set(REGISTRY.optimizers)


@pytest.mark.parametrize(("task", "optimizer"), PAIRS, ids=[f"{t}-{o}" for t, o in PAIRS])
def test_one_training_step(task, optimizer, tmp_path):
    import lightning.pytorch as pl
    import torch

    from framework.training.optimizer_modes import OptimizerModes
    from framework.training.run import build

    request = parse_overrides([f"tasks={task}", f"optimizers={optimizer}", f"engine.output_dir={tmp_path}",
                               "engine.log_every_n_steps=1", *SMALL.get(task, [])])  # log_every_n_steps: so the one step's loss is logged
    (spec,) = expand(request, REGISTRY)
    model, datamodule, _, _, _ = build(spec, REGISTRY, tmp_path / "run")
    before = [p.detach().clone() for p in model.parameters()]
    trainer = pl.Trainer(
        fast_dev_run=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[OptimizerModes()],  # as in every engine run: schedule-free optimizers step only in train mode
    )
    trainer.fit(model, datamodule=datamodule)
    changed = sum(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    assert changed > 0, "one optimizer step changed no parameter"
    loss = trainer.callback_metrics["train_loss"]  # every task logs it through TaskModel.log_train_loss
    assert torch.isfinite(loss)
    names = [n for g in model.model.parameter_groups() for n in g.names]
    assert sorted(names) == sorted(n for n, p in model.model.model.named_parameters() if p.requires_grad)
