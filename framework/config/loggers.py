"""engine.loggers: the names a run can log to and the package each needs, checked with the configuration.

A missing optional package is a configuration problem, found by `--dry-run` and before any training
starts (importlib.util.find_spec looks for the package without importing it), not an ImportError
in every run of a grid.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from collections.abc import Mapping
from typing import Any

# logger name -> (the module it imports, how to install it); csv needs nothing beyond Lightning
LOGGER_PACKAGES: dict[str, tuple[str, str] | None] = {
    "csv": None,
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "mlflow": ("mlflow", 'pip install "framework[mlflow]"'),
    "wandb": ("wandb", 'pip install "framework[wandb]"'),
}
WANDB_MODES = ("offline", "online")


@functools.cache
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _optional_string(section: str, options: Mapping[str, Any], key: str) -> list[str]:
    value = options.get(key)
    if value is None or (isinstance(value, str) and value.strip()):
        return []
    return [f"engine.{section}.{key}: must be a non-empty string or null, got {value!r}"]


def logger_problems(engine: Mapping[str, Any]) -> list[str]:
    """Unknown logger names, loggers whose package is not installed, and bad logger options."""
    problems = []
    choices = ", ".join(LOGGER_PACKAGES)
    for name in engine.get("loggers", []):
        if name not in LOGGER_PACKAGES:
            match = difflib.get_close_matches(str(name), list(LOGGER_PACKAGES), n=1, cutoff=0.6)
            hint = f" (did you mean {match[0]}?)" if match else ""
            problems.append(f"engine.loggers: unknown logger {name!r}{hint}; choose from {choices}")
        elif LOGGER_PACKAGES[name] and not _installed(LOGGER_PACKAGES[name][0]):
            module, install = LOGGER_PACKAGES[name]
            problems.append(f"engine.loggers: {name} needs the {module} package, which is not installed: {install}")
    mlflow, wandb = engine.get("mlflow", {}), engine.get("wandb", {})
    problems += _optional_string("mlflow", mlflow, "tracking_uri") + _optional_string("mlflow", mlflow, "experiment")
    problems += _optional_string("wandb", wandb, "project") + _optional_string("wandb", wandb, "entity")
    if wandb.get("mode") not in WANDB_MODES:
        problems.append(f"engine.wandb.mode: must be one of {', '.join(WANDB_MODES)}, got {wandb.get('mode')!r}")
    return problems
