"""The digits task: the task contract's two functions."""

from __future__ import annotations

from .data import DigitsDataModule
from .model import DigitsModel


def get_datamodule(config) -> DigitsDataModule:
    return DigitsDataModule(config)


def get_task(optimizer, config) -> tuple[DigitsModel, DigitsDataModule]:
    return DigitsModel(optimizer, config), get_datamodule(config)
