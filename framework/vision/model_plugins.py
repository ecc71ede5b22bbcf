"""Model plugins: `models/<name>/` folders (bundled, $FRAMEWORK_PLUGIN_PATH, engine.plugin_paths) whose
architectures are registered with transformers' Auto classes, so that one key, `task.model.name`, builds
a plugin's preset, loads a save_pretrained folder of it, or anything else transformers knows.

    plugin, kwargs = find_preset("object_detection", "mask_rcnn-tiny")   # None: not a plugin's name
    config = plugin_config(plugin, kwargs, labels)   # imports and registers the plugin first
    register_for_folder("/models/my_mask_rcnn")       # before from_pretrained: its config.json names the type

A plugin is imported (and registered) only when a run needs it, and only once per process.
What its default.yaml holds is checked by framework/config/model_checks.py; docs/adding_a_model.md
walks through writing one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from framework.config.model_checks import TASK_KINDS, model_import_problem
from framework.config.registry import Plugin, Registry
from framework.errors import FrameworkError, PluginError

# model_type -> (the plugin registered under it in this process, its config class)
_REGISTERED: dict[str, tuple[Plugin, type]] = {}


def models(plugin_paths: list[str] | tuple[str, ...] = ()) -> dict[str, Plugin]:
    """The model plugins found (bundled and on the plugin path); discovery reads files only (a few ms:
    not cached, so a folder edited between two runs of one process is seen)."""
    return Registry([str(p) for p in plugin_paths]).models


def _settings(plugin: Plugin) -> dict[str, Any]:
    return plugin.defaults.get("model") or {}


def plugin_presets(kind: str | None, plugin_paths: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The names that build a plugin's model for `kind` (None: any kind): each serving plugin's name and
    preset names."""
    names = []
    for plugin in models(plugin_paths).values():
        settings = _settings(plugin)
        if plugin.ok and (kind is None or kind in settings.get("auto_classes", {})):
            names += [plugin.name, *(settings.get("presets") or {})]
    return names


def find_preset(kind: str, name: str, plugin_paths: list[str] | tuple[str, ...] = ()) -> tuple[Plugin, dict] | None:
    """(plugin, config keyword arguments) when `name` is a model plugin's name or one of its presets."""
    for plugin in models(plugin_paths).values():
        settings = _settings(plugin)
        presets = settings.get("presets") or {}
        if name != plugin.name and name not in presets:
            continue
        if not plugin.ok:
            raise PluginError(f"model '{plugin.name}' is broken: {plugin.problem}")
        serves = settings["auto_classes"]
        if kind not in serves:
            raise FrameworkError(f"model '{name}' ({plugin.path}) serves {', '.join(serves)}, not {kind}: "
                                 f"add {kind} to model.auto_classes in its default.yaml, or choose another model")
        if name == plugin.name:
            name = settings.get("default_preset") or next(iter(presets), None)
        return plugin, dict(presets.get(name) or {})
    return None


def register(plugin: Plugin) -> type:
    """Import the plugin and register its config and model classes with transformers' Auto classes
    (once per process); returns the config class."""
    import transformers

    settings = _settings(plugin)
    model_type = settings["model_type"]
    known = _REGISTERED.get(model_type)
    if known is not None and known[0].path == plugin.path:
        return known[1]
    modeling, configuration = plugin.load(), plugin.module("configuration")
    config_class = _config_class(plugin, configuration, model_type)
    problem = model_import_problem(plugin.path, settings, modeling, configuration)  # as `framework models --check`
    if problem:
        raise PluginError(problem)
    transformers.AutoConfig.register(model_type, config_class, exist_ok=True)
    for kind, class_name in settings["auto_classes"].items():
        getattr(transformers, TASK_KINDS[kind]).register(config_class, getattr(modeling, class_name), exist_ok=True)
    _REGISTERED[model_type] = (plugin, config_class)
    return config_class


def _config_class(plugin: Plugin, configuration: Any, model_type: str) -> type:
    from transformers import PretrainedConfig

    for value in vars(configuration).values():
        if isinstance(value, type) and issubclass(value, PretrainedConfig) and getattr(value, "model_type", "") == model_type:
            return value
    raise PluginError(f"{plugin.path / 'configuration.py'}: no PretrainedConfig subclass with model_type = "
                      f"'{model_type}' (default.yaml model.model_type)")


def plugin_config(plugin: Plugin, kwargs: dict[str, Any], labels: dict[str, Any]) -> Any:
    """The plugin's config for one preset (its keyword arguments) and the task's classes."""
    config_class = register(plugin)
    try:
        return config_class(**kwargs, **labels)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"model '{plugin.name}': its config class refused a preset of "
                          f"{plugin.path / 'default.yaml'}: {exc}") from None


def register_for_folder(name: str, plugin_paths: list[str] | tuple[str, ...] = ()) -> None:
    """Before `from_pretrained(name)`: register the plugin whose model_type the saved config.json names
    (a folder), or every sound plugin (a hub id in the local cache, whose type is known only after)."""
    path = Path(name).expanduser() / "config.json"
    found = models(plugin_paths)
    if path.is_file():
        try:
            model_type = json.loads(path.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError) as exc:
            raise FrameworkError(f"{path}: not a readable config.json ({exc})") from None
        found = {k: p for k, p in found.items() if _settings(p).get("model_type") == model_type}
    for plugin in found.values():
        if plugin.ok:
            register(plugin)


def registered(model_type: str) -> Plugin | None:
    """The plugin registered under `model_type` in this process (after a model of it was built)."""
    known = _REGISTERED.get(model_type)
    return known[0] if known else None


def adapter_class(model_type: str) -> Any:
    """A registered plugin's adapter: a class of its folder ("module:Class"), a built-in family's name
    (str), or None when the plugin names none."""
    plugin = registered(model_type)
    spec = _settings(plugin).get("adapter") if plugin else None
    if not spec or ":" not in spec:
        return spec
    module, name = spec.split(":", 1)
    found = getattr(plugin.module(module), name, None)
    if found is None:
        raise PluginError(f"{plugin.path / (module + '.py')}: no class {name} (default.yaml model.adapter)")
    return found


def backbone_of(model_type: str) -> str | None:
    """A registered plugin's backbone submodule (default.yaml model.backbone)."""
    plugin = registered(model_type)
    return _settings(plugin).get("backbone") if plugin else None
