"""Semantic segmentation: the task contract's two functions."""

from __future__ import annotations

from .data import SemanticDataModule
from .model import SemanticSegmentationModel


def get_datamodule(config) -> SemanticDataModule:
    return SemanticDataModule(config)


def get_task(optimizer, config) -> tuple[SemanticSegmentationModel, SemanticDataModule]:
    datamodule = get_datamodule(config)
    return SemanticSegmentationModel(optimizer, config, datamodule.class_names), datamodule
