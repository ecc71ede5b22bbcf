"""The plugin contract: everything a task, optimizer or model author imports, from one place.

    from framework.api import TaskModel, TaskDataModule, GroupedModel, ParameterGroup, build_scheduler

Tasks subclass `TaskModel` (a LightningModule) and `TaskDataModule` (a LightningDataModule) and wrap
their network in a `GroupedModel`; optimizers receive that `GroupedModel` in
`configure_optimizers(model, config)`, hand `model.param_groups(lr, weight_decay)` to torch.optim,
check their values with `check_values` and use the shared `build_scheduler`. Importing this module
imports torch and Lightning: the engine itself never imports it at module level.
"""

from framework.config.schedules import SCHEDULES, Schedule, build_scheduler, lr_factor, schedule_from_config
from framework.config.value_checks import check_values, choice_problems, range_problems
from framework.errors import ConfigError, DataError, FrameworkError, PluginError
from framework.training.data_cache import default_cache_dir, generate_once
from framework.training.data_files import load_image, read_csv, read_json
from framework.training.parameter_groups import DEFAULT_GROUP, NO_DECAY, GroupedModel, ParameterGroup
from framework.training.predict import top_k_columns, write_csv
from framework.training.task import ResumePoint, TaskDataModule, TaskModel, per_device_batch_size

__all__ = [
    # tasks
    "TaskModel", "TaskDataModule", "ResumePoint", "per_device_batch_size",
    # parameter groups (what an optimizer receives)
    "GroupedModel", "ParameterGroup", "NO_DECAY", "DEFAULT_GROUP",
    # learning-rate schedules and optimizer value checks
    "build_scheduler", "schedule_from_config", "Schedule", "lr_factor", "SCHEDULES",
    "check_values", "range_problems", "choice_problems",
    # data helpers whose errors name the file
    "read_json", "read_csv", "load_image", "generate_once", "default_cache_dir",
    # `framework predict` hooks: top-k tables and CSV files
    "top_k_columns", "write_csv",
    # errors
    "FrameworkError", "ConfigError", "DataError", "PluginError",
]
