"""COCO instance segmentation: the task contract's two functions."""

from __future__ import annotations

from .data import InstanceDataModule
from .model import InstanceModel


def get_datamodule(config) -> InstanceDataModule:
    return InstanceDataModule(config)


def get_task(optimizer, config) -> tuple[InstanceModel, InstanceDataModule]:
    datamodule = get_datamodule(config)
    return InstanceModel(optimizer, config, datamodule.class_names), datamodule
