"""The conformance suite for a plugin author's own pytest, as scikit-learn's `parametrize_with_checks`:

    # tests/test_my_plugins.py, beside my_plugins/tasks/<name>/, my_plugins/optimizers/<name>/, my_plugins/models/<name>/
    from framework.testing import parametrize_plugin_checks

    @parametrize_plugin_checks("my_plugins")
    def test_my_plugins(check):
        check()

Each (task, optimizer, check) becomes one test, named `<task>-<optimizer>-<check>` (`<task>[<model>]-...`
for a model plugin). The checks and the pairing (a task of the folder with the bundled adamw_baseline, an
optimizer with the bundled digits task, a model with the bundled task of each kind it serves)
are those of `framework conformance` (framework/training/conformance.py). Importing this module is light;
the checks import torch and Lightning when they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from framework.errors import FrameworkError
from framework.training.conformance import CHECKS, all_pairs, pair_checks, reference_pairs

__all__ = ["CHECKS", "plugin_checks", "parametrize_plugin_checks"]


def plugin_checks(*folders: str | Path, every_pair: bool = False, checks: tuple[str, ...] = CHECKS,
                  overrides: dict[str, list[str]] | None = None) -> Iterator[tuple[str, Callable[[], None]]]:
    """(id, check) for each plugin of the plugin `folders` and each check; calling `check()` raises when the
    plugin breaks it. `every_pair`: every task x every optimizer the registry finds (bundled plugins and
    the folders'), instead of each plugin of the folders with its bundled reference. `overrides`: extra
    `key=value` overrides per task name (e.g. smaller images on a CPU). A folder that does not exist,
    holds no plugin or a broken one raises FrameworkError, naming it."""
    from framework.config.registry import Registry

    registry = Registry(list(folders))
    if registry.problems:
        raise FrameworkError("; ".join(registry.problems))
    if every_pair:
        pairs = all_pairs(registry)
    else:
        pairs, problems = reference_pairs(list(folders), registry)
        if problems:
            raise FrameworkError("; ".join(problems))
    for task, optimizer, name, check in pair_checks(pairs, registry, tuple(checks), overrides):
        yield f"{task}-{optimizer}-{name}", check


def parametrize_plugin_checks(*folders: str | Path, **options) -> Callable:
    """A pytest decorator: the test receives each check of `plugin_checks(*folders, **options)` as `check`."""
    import pytest

    items = list(plugin_checks(*folders, **options))
    return pytest.mark.parametrize("check", [check for _, check in items], ids=[name for name, _ in items])
