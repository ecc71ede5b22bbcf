"""Image classification: the task contract's functions (and the optional describe)."""

from __future__ import annotations

from framework.vision.describe import describe_run

from .data import ClassificationDataModule
from .model import ClassificationModel


def get_datamodule(config) -> ClassificationDataModule:
    return ClassificationDataModule(config)


def get_task(optimizer, config) -> tuple[ClassificationModel, ClassificationDataModule]:
    datamodule = get_datamodule(config)
    return ClassificationModel(optimizer, config, datamodule.class_names), datamodule


def describe(config) -> str:
    """The line `framework run` prints first: the model and data this config trains."""
    return describe_run(config, ClassificationModel.kind, lambda: get_datamodule(config).class_names)
