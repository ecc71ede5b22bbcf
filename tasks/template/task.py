"""Template task: copy this folder to tasks/<your_task>/ (or to a plugin folder of your own) and edit.

    cp -r tasks/template tasks/my_task        # then set task.name: my_task in default.yaml
    framework run tasks=my_task --dry-run     # checks the config
    framework run tasks=my_task               # trains

task.py provides exactly two functions. The engine calls `get_task`; `framework prepare` (and tools
that only need data) call `get_datamodule`. Relative imports (`from .data import ...`) work because
the engine imports this folder as a package of its own.
"""

from __future__ import annotations

from .data import BlobsDataModule
from .model import BlobsModel


def get_datamodule(config) -> BlobsDataModule:
    # `config` is the run's frozen configuration: config.task.<your keys>, config.engine.seed, ...
    return BlobsDataModule(config)


def get_task(optimizer, config) -> tuple[BlobsModel, BlobsDataModule]:
    # `optimizer` is a factory injected by the engine: pass it on to TaskModel, never build one here.
    return BlobsModel(optimizer, config), get_datamodule(config)
