"""COCO object detection: the task contract's two functions."""

from __future__ import annotations

from .data import DetectionDataModule
from .model import DetectionModel


def get_datamodule(config) -> DetectionDataModule:
    return DetectionDataModule(config)


def get_task(optimizer, config) -> tuple[DetectionModel, DetectionDataModule]:
    datamodule = get_datamodule(config)
    return DetectionModel(optimizer, config, datamodule.class_names), datamodule
