"""COCO object detection: the task contract's functions (and the optional describe)."""

from __future__ import annotations

from framework.vision.describe import describe_run

from .data import DetectionDataModule
from .model import DetectionModel


def get_datamodule(config) -> DetectionDataModule:
    return DetectionDataModule(config)


def get_task(optimizer, config) -> tuple[DetectionModel, DetectionDataModule]:
    datamodule = get_datamodule(config)
    return DetectionModel(optimizer, config, datamodule.class_names), datamodule


def describe(config) -> str:
    """The line `framework run` prints first: the model and data this config trains."""
    return describe_run(config, DetectionModel.kind, lambda: get_datamodule(config).class_names)
