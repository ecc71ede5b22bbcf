"""The namespace that task and optimizer plugins are imported under: `framework.plugins.<kind>s.<name>`.

Plugin folders live anywhere (the bundled ones, $FRAMEWORK_PLUGIN_PATH, engine.plugin_paths), so their
packages are made by `framework.config.registry` when it loads them, not found on sys.path. A process started
by a run (Lightning's `ddp_spawn`, spawned DataLoader workers) unpickles objects of a plugin's modules
before any framework code runs in it; importing this package first re-creates the packages of every
plugin the parent process loaded, from $FRAMEWORK_LOADED_PLUGINS, which `register` keeps up to date.
"""

from __future__ import annotations

import json
import os
import sys
import types

_ENV = "FRAMEWORK_LOADED_PLUGINS"


def _make_package(name: str, path: list[str]) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = path
    module.__package__ = name
    if path:
        module.__file__ = os.path.join(path[0], "__init__.py")
    sys.modules[name] = module
    return module


def register(package: str, folder: str) -> None:
    """Create `package` (e.g. framework.plugins.tasks.digits) for the plugin in `folder`, and record it
    for child processes."""
    kind_package = package.rsplit(".", 1)[0]
    if kind_package not in sys.modules:
        _make_package(kind_package, [])
    _make_package(package, [folder])
    loaded = json.loads(os.environ.get(_ENV, "{}"))
    loaded[package] = folder
    os.environ[_ENV] = json.dumps(loaded)


for _package, _folder in json.loads(os.environ.get(_ENV, "{}")).items():
    if _package not in sys.modules:
        register(_package, _folder)
