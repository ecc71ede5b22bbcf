"""COCO panoptic segmentation: the task contract's two functions."""

from __future__ import annotations

from .data import PanopticDataModule
from .model import PanopticModel


def get_datamodule(config) -> PanopticDataModule:
    return PanopticDataModule(config)


def get_task(optimizer, config) -> tuple[PanopticModel, PanopticDataModule]:
    datamodule = get_datamodule(config)
    return PanopticModel(optimizer, config, datamodule.categories), datamodule
