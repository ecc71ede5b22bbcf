# python -m pytest tests/test_registry.py -q
"""The plugin registry: discovery of bundled and user folders, broken plugins reported by name and
file, on-demand imports (relative ones included), selection and lookup errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from framework.config import parse_overrides
from framework.config.grid import expand
from framework.config.registry import PLUGIN_PATH_ENV, Registry, builtin_root
from framework.errors import PluginError


@pytest.fixture(autouse=True)
def _no_user_plugins(monkeypatch):
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)


def make_optimizer(root: Path, name: str, code: str = "from .helper import VALUE\n", files: dict[str, str] | None = None) -> Path:
    """A light optimizer plugin (no torch): optimizer.py imports helper.py relatively; `files` replaces files."""
    folder = root / "optimizers" / name
    folder.mkdir(parents=True)
    contents = {
        "optimizer.py": code,
        "helper.py": f"VALUE = {str(folder)!r}\n",
        "default.yaml": f"optimizer:\n  name: {name}\n  learning_rate: 0.1\n",
        "README.md": f"# {name}\n\nA test optimizer called {name}. More prose.\n",
    }
    contents.update(files or {})
    for filename, text in contents.items():
        (folder / filename).write_text(text, encoding="utf-8")
    return folder


def make_task(root: Path, name: str) -> Path:
    """A copy of the bundled template task under a new name."""
    folder = root / "tasks" / name
    shutil.copytree(builtin_root() / "tasks" / "template", folder)
    default = folder / "default.yaml"
    default.write_text(default.read_text(encoding="utf-8").replace("name: template", f"name: {name}"), encoding="utf-8")
    return folder


# ---------------------------------------------------------------- discovery


def test_bundled_plugins_are_discovered_sound():
    registry = Registry()
    assert registry.roots == [builtin_root()] and registry.problems == []
    assert {"digits", "template"} <= set(registry.tasks)
    assert {"adamw_baseline", "sgd_baseline", "template"} <= set(registry.optimizers)
    for plugin in [*registry.tasks.values(), *registry.optimizers.values()]:
        assert plugin.ok, plugin.problem
        assert plugin.description and not plugin.description.startswith("#")
        assert plugin.defaults[plugin.kind]["name"] == plugin.name == plugin.path.name


def test_user_folders_from_the_environment_and_from_engine_plugin_paths(tmp_path, monkeypatch):
    make_optimizer(tmp_path / "a", "from_env_a")
    make_optimizer(tmp_path / "b", "from_env_b")
    make_optimizer(tmp_path / "c", "from_extra")
    monkeypatch.setenv(PLUGIN_PATH_ENV, os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")]))
    registry = Registry([tmp_path / "c"])
    assert registry.roots[1:] == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    assert {"from_env_a", "from_env_b", "from_extra"} <= set(registry.optimizers)
    assert registry.optimizers["from_extra"].ok
    assert registry.optimizers["from_extra"].description == "A test optimizer called from_extra"
    assert registry.problems == []


def test_a_missing_plugin_folder_is_a_problem(tmp_path):
    registry = Registry([tmp_path / "nowhere"])
    (problem,) = registry.problems
    assert str(tmp_path / "nowhere") in problem and "does not exist" in problem


def test_a_folder_missing_a_required_file_is_broken(tmp_path):
    task = make_task(tmp_path, "no_model")
    (task / "model.py").unlink()
    optimizer = make_optimizer(tmp_path, "no_readme")
    (optimizer / "README.md").unlink()
    registry = Registry([tmp_path])
    assert not registry.tasks["no_model"].ok
    assert str(task) in registry.tasks["no_model"].problem and "missing model.py" in registry.tasks["no_model"].problem
    assert str(optimizer) in registry.optimizers["no_readme"].problem
    assert "missing README.md" in registry.optimizers["no_readme"].problem
    assert registry.optimizers["adamw_baseline"].ok  # the others are unaffected


def test_a_default_yaml_lacking_a_required_key_is_broken(tmp_path):
    task = make_task(tmp_path, "no_batch")
    default = task / "default.yaml"
    default.write_text(default.read_text(encoding="utf-8").replace("  batch_size: 32", "  batchsize: 32"), encoding="utf-8")
    make_optimizer(tmp_path, "nameless", files={"default.yaml": "optimizer:\n  learning_rate: 0.1\n"})
    registry = Registry([tmp_path])
    assert registry.tasks["no_batch"].problem == f"{default} lacks required key(s): task.batch_size"
    assert "lacks required key(s): optimizer.name" in registry.optimizers["nameless"].problem


@pytest.mark.parametrize(
    ("default_yaml", "optimizer_py", "expected"),
    [
        ("optimizer:\n  name: other\n", "", "optimizer.name is 'other' but must equal the folder name 'odd'"),
        ("optimizer: [unclosed\n", "", "default.yaml:2: invalid YAML"),
        ("- just a list\n", "", "expected a mapping"),
        ("optimizer:\n  name: odd\n", "def broken(:\n", "optimizer.py:1: SyntaxError"),
    ],
)
def test_malformed_plugins_are_broken_with_a_message_naming_the_file(tmp_path, default_yaml, optimizer_py, expected):
    folder = make_optimizer(tmp_path, "odd", code=optimizer_py or "VALUE = 1\n", files={"default.yaml": default_yaml})
    plugin = Registry([tmp_path]).optimizers["odd"]
    assert not plugin.ok and expected in plugin.problem and str(folder) in plugin.problem


def test_the_same_name_in_two_roots_is_a_problem_naming_both(tmp_path):
    first = make_optimizer(tmp_path / "one", "twin")
    second = make_optimizer(tmp_path / "two", "twin")
    shadow = make_task(tmp_path / "two", "digits")
    registry = Registry([tmp_path / "one", tmp_path / "two", tmp_path / "one"])  # a root given twice counts once
    assert len(registry.problems) == 2
    assert any(str(first) in p and str(second) in p and "optimizer 'twin' is defined twice" in p for p in registry.problems)
    assert any(str(builtin_root() / "tasks" / "digits") in p and str(shadow) in p for p in registry.problems)
    assert registry.optimizers["twin"].path == first  # the first one found is kept


# ---------------------------------------------------------------- lookup and selection


def test_unknown_names_list_the_known_ones_with_a_hint():
    registry = Registry()
    with pytest.raises(PluginError) as info:
        registry.get("optimizer", "sgd_basline")
    known = ", ".join(sorted(registry.optimizers))
    assert str(info.value) == f"unknown optimizer 'sgd_basline' (did you mean 'sgd_baseline'? known: {known})"
    with pytest.raises(PluginError, match=rf"^unknown task 'zzz' \(known: {', '.join(sorted(registry.tasks))}\)$"):
        registry.get("task", "zzz")


def test_select_all_skips_broken_plugins_and_the_template(tmp_path):
    make_optimizer(tmp_path, "good")
    (make_optimizer(tmp_path, "bad") / "README.md").unlink()
    registry = Registry([tmp_path])
    chosen, problems = registry.select("optimizer", ["all"])
    bundled = [name for name, p in Registry().optimizers.items() if name != "template"]
    assert [p.name for p in chosen] == [*bundled, "good"] and problems == []
    chosen, problems = registry.select("optimizer", ["good", "bad", "template", "good", "nope"])
    assert [p.name for p in chosen] == ["good", "template"]  # named explicitly, the template may be used
    assert problems[0].startswith("optimizer 'bad' is broken: ") and "missing README.md" in problems[0]
    assert problems[1].startswith("unknown optimizer 'nope'")


def test_a_user_task_runs_through_the_grid_with_its_own_defaults(tmp_path):
    make_task(tmp_path, "blobs")
    runs = expand(parse_overrides(["tasks=blobs", "engine.plugin_paths=[" + str(tmp_path) + "]"]), Registry([tmp_path]))
    (run,) = runs
    assert (run.task, run.optimizer) == ("blobs", "adamw_baseline")
    assert run.config["optimizer"]["learning_rate"] == 1e-2 and run.config["task"]["input_dim"] == 8
    assert run.run_dir("r") == Path("r") / "blobs" / "adamw_baseline" / run.run_id


# ---------------------------------------------------------------- imports on demand


def test_load_imports_the_plugin_as_a_package_so_relative_imports_work(tmp_path):
    folder = make_optimizer(tmp_path / "plugins", "relative-name")  # not a valid identifier: still loads
    plugin = Registry([tmp_path / "plugins"]).optimizers["relative-name"]
    module = plugin.load()
    assert module.VALUE == str(folder)
    assert Path(module.__file__) == folder / "optimizer.py"
    assert plugin.load() is module  # imported once


def test_plugins_of_the_same_name_from_different_folders_load_their_own_code(tmp_path):
    first = make_optimizer(tmp_path / "one", "same")
    second = make_optimizer(tmp_path / "two", "same")
    assert Registry([tmp_path / "one"]).optimizers["same"].load().VALUE == str(first)
    assert Registry([tmp_path / "two"]).optimizers["same"].load().VALUE == str(second)


def test_an_import_failure_names_the_plugin_and_leaves_the_others_loadable(tmp_path):
    make_optimizer(tmp_path, "fails", code="import nonexistent_module\n")
    make_optimizer(tmp_path, "works")
    registry = Registry([tmp_path])
    assert registry.optimizers["fails"].ok  # discovery reads files only
    with pytest.raises(PluginError) as info:
        registry.optimizers["fails"].load()
    message = str(info.value)
    assert message.startswith("optimizer 'fails' failed to import (")
    assert str(tmp_path / "optimizers" / "fails" / "optimizer.py") in message
    assert "ModuleNotFoundError: No module named 'nonexistent_module'" in message
    assert registry.optimizers["works"].load().VALUE == str(tmp_path / "optimizers" / "works")


def test_loading_a_broken_plugin_raises_its_problem(tmp_path):
    (make_optimizer(tmp_path, "incomplete") / "default.yaml").unlink()
    with pytest.raises(PluginError, match=r"optimizer 'incomplete' is broken: .*missing default.yaml"):
        Registry([tmp_path]).optimizers["incomplete"].load()


# ---------------------------------------------------------------- the listing commands


def test_tasks_listing_shows_user_plugins(cli, tmp_path):
    make_task(tmp_path, "mine")
    result = cli("tasks", "--plugin-path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in result.stdout.splitlines()[2:]}
    assert rows == {**{name: ["ok", "bundled"] for name in Registry().tasks}, "mine": ["ok", str(tmp_path.resolve())]}


def test_tasks_check_marks_an_import_failure_broken_and_keeps_the_others(cli, tmp_path):
    # This one imports every plugin for real (torch included), in a child process.
    task = make_task(tmp_path, "bad_import")
    (task / "task.py").write_text("import nonexistent_module\n", encoding="utf-8")
    make_task(tmp_path, "good_copy")
    result = cli("tasks", "--check", cwd=tmp_path, env={PLUGIN_PATH_ENV: str(tmp_path)})
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert rows["bad_import"].split()[1] == "broken"
    assert rows["bad_import"].split()[2] == str(tmp_path.resolve())  # where the broken one came from
    assert "ModuleNotFoundError: No module named 'nonexistent_module'" in rows["bad_import"]
    assert all(rows[name].split()[1] == "ok" for name in ("digits", "template", "good_copy"))
