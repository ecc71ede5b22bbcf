"""The multitask_pain task: the task contract's two functions, and the config check they both run.

    framework run tasks=multitask_pain                              # the bundled synthetic data
    framework run tasks=multitask_pain task.data_dir=/data/my_pain  # your own, in the format of features.py

get_task reads the data before building the model: the encoder's input size and the heads' class counts
come from the data (detect_input_shape, the manifest's classes), never from config keys that could
disagree with it.
"""

from __future__ import annotations

from .data import MultiTaskDataModule
from .model import MultiTaskModel
from .settings import check_config, settings_from_config

__all__ = ["check_config", "get_datamodule", "get_task"]  # check_config: the task's value checks, used by the tests


def get_datamodule(config) -> MultiTaskDataModule:
    return MultiTaskDataModule(config, settings_from_config(config))  # a ConfigError before any data is read


def get_task(optimizer, config) -> tuple[MultiTaskModel, MultiTaskDataModule]:
    datamodule = get_datamodule(config)
    spec = datamodule.load()  # generates the bundled data on first use, then reads, checks and splits it
    return MultiTaskModel(optimizer, config, datamodule.settings, spec), datamodule
