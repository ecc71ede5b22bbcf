"""Image classification: the task contract's two functions."""

from __future__ import annotations

from .data import ClassificationDataModule
from .model import ClassificationModel


def get_datamodule(config) -> ClassificationDataModule:
    return ClassificationDataModule(config)


def get_task(optimizer, config) -> tuple[ClassificationModel, ClassificationDataModule]:
    datamodule = get_datamodule(config)
    return ClassificationModel(optimizer, config, datamodule.class_names), datamodule
