"""COCO instance segmentation: the task contract's functions (and the optional describe)."""

from __future__ import annotations

from framework.vision.describe import describe_run

from .data import InstanceDataModule
from .model import InstanceModel


def get_datamodule(config) -> InstanceDataModule:
    return InstanceDataModule(config)


def get_task(optimizer, config) -> tuple[InstanceModel, InstanceDataModule]:
    datamodule = get_datamodule(config)
    return InstanceModel(optimizer, config, datamodule.class_names), datamodule


def describe(config) -> str:
    """The line `framework run` prints first: the model and data this config trains."""
    return describe_run(config, InstanceModel.kind, lambda: get_datamodule(config).class_names)
