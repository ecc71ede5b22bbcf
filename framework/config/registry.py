"""Plugin discovery: task, optimizer and model folders, found on disk and imported on demand.

A plugin is a folder whose name is its key. Discovery only reads files (no imports), so listing
plugins stays instant; a plugin is imported as a package of its own the first time a run needs it, so
relative imports inside the folder work wherever the folder lives.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config.file_io import load_yaml
from framework.config.model_checks import model_import_problem, model_problem
from framework.errors import PluginError

PLUGIN_PATH_ENV = "FRAMEWORK_PLUGIN_PATH"
FILES = {
    "task": ("task.py", "model.py", "data.py", "default.yaml", "README.md"),
    "optimizer": ("optimizer.py", "default.yaml", "README.md"),
    # a model architecture registered with transformers' Auto classes (framework/vision/model_plugins.py)
    "model": ("configuration.py", "modeling.py", "default.yaml", "README.md"),
}
ENTRY = {"task": "task", "optimizer": "optimizer", "model": "modeling"}
# Required keys of a task's default.yaml (dotted); `max_epochs` may be replaced by `max_steps`.
TASK_REQUIRED = (
    "task.name", "task.batch_size", "task.target_metric", "task.target_metric_mode",
    "engine.devices", "engine.sbatch_args.time",
    "evaluation.plot.metric", "evaluation.plot.test_metric_mode", "evaluation.plot.format",
    "evaluation.plot.limits", "optimizer.name",
)
OPTIMIZER_REQUIRED = ("optimizer.name",)
# The sections an optimizer's default.yaml may hold: its own hyperparameters and the schedule keys it
# replaces (framework/config/recipe.py). The rest of the training recipe (epochs, batch size, clipping,
# precision, ...) is the task's, so that every optimizer trains it alike.
OPTIMIZER_SECTIONS = ("optimizer", "schedule")
EXCLUDED_FROM_ALL = {"template"}


def builtin_root() -> Path:
    """Where the bundled tasks/, optimizers/ and models/ live: inside the installed package (wheel) or beside
    it (source checkout or editable install)."""
    package = Path(__file__).resolve().parent.parent  # framework/
    bundled = package / "_builtin"
    return bundled if bundled.is_dir() else package.parent


def _lookup(tree: Any, dotted: str) -> tuple[bool, Any]:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False, None
        tree = tree[part]
    return True, tree


@dataclass
class Plugin:
    kind: str
    name: str
    path: Path
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why the plugin is broken, if it is

    @property
    def ok(self) -> bool:
        return self.problem is None

    def load(self) -> types.ModuleType:
        """Import the plugin's entry module (task.py / optimizer.py) as part of its own package."""
        if self.problem:
            raise PluginError(f"{self.kind} '{self.name}' is broken: {self.problem}")
        package = f"framework.plugins.{self.kind}s.{self.name}"
        loaded = sys.modules.get(package)
        if loaded is not None and list(getattr(loaded, "__path__", [])) != [str(self.path)]:
            # A plugin of the same name from another folder was imported before: forget it and its modules.
            for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[module]
        if package not in sys.modules:
            import framework.plugins

            framework.plugins.register(package, str(self.path))
        return self.module(ENTRY[self.kind])

    def module(self, name: str) -> types.ModuleType:
        """Import `<name>.py` of the plugin's folder (its package is registered by `load`)."""
        package = f"framework.plugins.{self.kind}s.{self.name}"
        try:
            return importlib.import_module(f"{package}.{name}")
        except Exception as exc:  # the plugin's own code failed: name it, keep the cause
            raise PluginError(
                f"{self.kind} '{self.name}' failed to import ({self.path}/{name}.py): {type(exc).__name__}: {exc}"
            ) from exc


def _describe(readme: Path) -> str:
    """The first line of prose in a README: the one-line description shown in listings."""
    try:
        for line in readme.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "<!--", "```", "|", "!")):
                return line.split(". ")[0].rstrip(".")
    except OSError:
        pass
    return ""


def _inspect(kind: str, path: Path) -> Plugin:
    plugin = Plugin(kind, path.name, path)
    missing = [name for name in FILES[kind] if not (path / name).is_file()]
    if missing:
        plugin.problem = f"{path} is missing {', '.join(missing)} (every {kind} folder needs {', '.join(FILES[kind])})"
        return plugin
    plugin.description = _describe(path / "README.md")
    try:
        defaults = load_yaml(path / "default.yaml") or {}
    except ValueError as exc:
        plugin.problem = str(exc)
        return plugin
    if not isinstance(defaults, dict):
        plugin.problem = f"{path / 'default.yaml'}: expected a mapping with sections task, optimizer, schedule, engine, evaluation"
        return plugin
    plugin.defaults = defaults
    if kind == "model":
        plugin.problem = model_problem(path, defaults)
        return plugin
    foreign = [str(k) for k in defaults if k not in OPTIMIZER_SECTIONS] if kind == "optimizer" else []
    if foreign:
        plugin.problem = (f"{path / 'default.yaml'}: section {', '.join(foreign)} is not allowed in an optimizer's "
                          f"default.yaml (only optimizer, and schedule for the schedule keys it replaces): the rest "
                          f"of the training recipe is the task's; remove it")
        return plugin
    required = TASK_REQUIRED if kind == "task" else OPTIMIZER_REQUIRED
    absent = [key for key in required if not _lookup(defaults, key)[0]]
    if kind == "task" and not (_lookup(defaults, "task.max_epochs")[0] or _lookup(defaults, "task.max_steps")[0]):
        absent.append("task.max_epochs (or task.max_steps)")
    if absent:
        plugin.problem = f"{path / 'default.yaml'} lacks required key(s): {', '.join(absent)}"
        return plugin
    own_name = _lookup(defaults, f"{kind}.name")[1]
    if own_name != path.name:
        plugin.problem = f"{path / 'default.yaml'}: {kind}.name is {own_name!r} but must equal the folder name {path.name!r}"
    return plugin


def _check_syntax(plugin: Plugin) -> None:
    """Compile every Python file: catches syntax errors without importing anything heavy."""
    for source in sorted(plugin.path.glob("*.py")):
        try:
            compile(source.read_text(encoding="utf-8"), str(source), "exec")
        except SyntaxError as exc:
            plugin.problem = f"{source}:{exc.lineno}: SyntaxError: {exc.msg}"
            return


class Registry:
    """The tasks, optimizers and models found in the bundled folder and the user's plugin folders."""

    def __init__(self, extra_paths: list[str | Path] | None = None):
        env = [p for p in os.environ.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
        self.roots = [builtin_root()] + [Path(p).expanduser().resolve() for p in [*env, *(extra_paths or [])]]
        self.plugins: dict[str, dict[str, Plugin]] = {kind: {} for kind in FILES}
        self.problems: list[str] = []
        seen: set[Path] = set()
        for root in self.roots:
            if root in seen:
                continue
            seen.add(root)
            if not root.is_dir():
                self.problems.append(f"plugin folder {root} does not exist (from ${PLUGIN_PATH_ENV} or engine.plugin_paths)")
                continue
            for kind in FILES:
                folder = root / f"{kind}s"
                if not folder.is_dir():
                    continue
                for path in sorted(folder.iterdir()):
                    if not path.is_dir() or path.name.startswith(("_", ".")):
                        continue
                    other = self.plugins[kind].get(path.name)
                    if other is not None:
                        self.problems.append(f"{kind} '{path.name}' is defined twice: {other.path} and {path}; rename one folder")
                        continue
                    plugin = _inspect(kind, path)
                    if plugin.ok:
                        _check_syntax(plugin)
                    self.plugins[kind][path.name] = plugin

    @property
    def tasks(self) -> dict[str, Plugin]:
        return self.plugins["task"]

    @property
    def optimizers(self) -> dict[str, Plugin]:
        return self.plugins["optimizer"]

    @property
    def models(self) -> dict[str, Plugin]:
        return self.plugins["model"]

    def get(self, kind: str, name: str) -> Plugin:
        """The plugin called `name`; an unknown name lists the valid choices."""
        plugins = self.plugins[kind]
        if name not in plugins:
            import difflib

            close = difflib.get_close_matches(name, list(plugins), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            known = ", ".join(sorted(plugins)) or "none"
            raise PluginError(f"unknown {kind} '{name}' ({hint}known: {known})")
        return plugins[name]

    def select(self, kind: str, names: list[str]) -> tuple[list[Plugin], list[str]]:
        """Resolve names (with `all`) to plugins. Returns the plugins and one problem per bad name;
        `all` skips broken plugins and the template, named plugins must be usable."""
        chosen: list[Plugin] = []
        problems: list[str] = []
        for name in names:
            if name == "all":
                chosen += [p for n, p in self.plugins[kind].items() if n not in EXCLUDED_FROM_ALL and p.ok]
                continue
            try:
                plugin = self.get(kind, name)
            except PluginError as exc:
                problems.append(str(exc))
                continue
            if not plugin.ok:
                problems.append(f"{kind} '{name}' is broken: {plugin.problem}")
            else:
                chosen.append(plugin)
        unique = list({p.name: p for p in chosen}.values())
        return unique, problems

    def check_imports(self) -> None:
        """Import every plugin that looks sound; those that fail are marked broken with their error."""
        for plugins in self.plugins.values():
            for plugin in plugins.values():
                if plugin.ok:
                    try:
                        module = plugin.load()
                        if plugin.kind == "model":
                            plugin.problem = model_import_problem(plugin.path, plugin.defaults["model"], module,
                                                                  plugin.module("configuration"))
                    except PluginError as exc:
                        cause = exc.__cause__
                        plugin.problem = f"{type(cause).__name__}: {cause}" if cause else str(exc)
