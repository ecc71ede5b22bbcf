"""COCO panoptic segmentation: the task contract's functions (and the optional describe)."""

from __future__ import annotations

from framework.vision.describe import describe_run

from .data import PanopticDataModule
from .model import PanopticModel


def get_datamodule(config) -> PanopticDataModule:
    return PanopticDataModule(config)


def get_task(optimizer, config) -> tuple[PanopticModel, PanopticDataModule]:
    datamodule = get_datamodule(config)
    return PanopticModel(optimizer, config, datamodule.categories), datamodule


def describe(config) -> str:
    """The line `framework run` prints first: the model and data this config trains."""
    return describe_run(config, PanopticModel.kind, lambda: get_datamodule(config).class_names)
