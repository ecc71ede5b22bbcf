"""Semantic segmentation: the task contract's functions (and the optional describe)."""

from __future__ import annotations

from framework.vision.describe import describe_run

from .data import SemanticDataModule
from .model import SemanticSegmentationModel


def get_datamodule(config) -> SemanticDataModule:
    return SemanticDataModule(config)


def get_task(optimizer, config) -> tuple[SemanticSegmentationModel, SemanticDataModule]:
    datamodule = get_datamodule(config)
    return SemanticSegmentationModel(optimizer, config, datamodule.class_names), datamodule


def describe(config) -> str:
    """The line `framework run` prints first: the model and data this config trains."""
    return describe_run(config, SemanticSegmentationModel.kind, lambda: get_datamodule(config).class_names)
