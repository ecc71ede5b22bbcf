# python -m pytest tests/test_conformance.py
"""The bundled plugins through the conformance suite of `framework conformance` and `framework.testing`:
every task x optimizer takes one real training step on the CPU, and each bundled plugin, paired with its
bundled reference (a task with adamw_baseline, an optimizer with digits), passes every check.

Parametrized over the registry, so a new plugin folder is tested the moment it exists.
"""

from __future__ import annotations

import pytest

from framework.config.registry import Registry, builtin_root
from framework.testing import parametrize_plugin_checks
from framework.training.conformance import REFERENCE_SIZES, pair_checks

REGISTRY = Registry()
# Tasks whose defaults are a recipe at real-data size (1024 crops) step at the bundled data's size here:
# one step at 1024 takes minutes on a CPU, and the contract under test does not depend on the size
SMALL = {"coco_panoptic": REFERENCE_SIZES["coco_instance"], "coco_instance": REFERENCE_SIZES["coco_instance"]}


def test_every_bundled_plugin_is_sound():
    broken = {f"{p.kind} {p.name}": p.problem for kind in REGISTRY.plugins.values() for p in kind.values() if not p.ok}
    assert not broken
    assert {"digits", "template"} <= set(REGISTRY.tasks)
    assert {"adamw_baseline", "sgd_baseline"} <= set(REGISTRY.optimizers)


@parametrize_plugin_checks(builtin_root(), every_pair=True, checks=("step",), overrides=SMALL)
def test_one_training_step(check):
    check()


@parametrize_plugin_checks(builtin_root(), overrides=SMALL)
def test_each_bundled_plugin_with_its_reference(check):
    check()


# Every optimizer trains the bundled Mask R-CNN (a model plugin) for one step on coco_instance: its groups,
# its losses and every update rule meet, as the task's own model does in test_one_training_step
_MODEL_STEPS = list(pair_checks([("coco_instance", o, "mask_rcnn") for o in sorted(REGISTRY.optimizers)], REGISTRY,
                                checks=("step",), overrides=SMALL))


@pytest.mark.parametrize("check", [c for *_, c in _MODEL_STEPS], ids=[f"{t}-{o}-{n}" for t, o, n, _ in _MODEL_STEPS])
def test_every_optimizer_steps_a_model_plugin(check):
    check()
