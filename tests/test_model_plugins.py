# python -m pytest tests/test_model_plugins.py -q
"""Model plugins (models/<name>/): discovery and listing, registration with transformers' Auto classes,
one key (`task.model.name`) for a plugin's preset, its name or a saved folder of it, and a user's model
folder outside the repo that trains by name with no engine change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from framework.config.registry import PLUGIN_PATH_ENV, Registry, builtin_root
from framework.errors import FrameworkError, PluginError
from framework.results.run_folder import load_runs
from framework.vision.models import backbone_prefix, grouped, load_model, presets

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(autouse=True)
def _no_user_plugins(monkeypatch):
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)


def user_model(root: Path, name: str = "my_convnet") -> Path:
    """The bundled template copied under a new folder name and model_type (what docs/adding_a_model.md says)."""
    folder = root / "models" / name
    shutil.copytree(builtin_root() / "models" / "template", folder)
    for filename in ("default.yaml", "configuration.py"):
        path = folder / filename
        text = path.read_text(encoding="utf-8").replace("template_convnet", f"{name}_type")
        path.write_text(text.replace("name: template", f"name: {name}").replace("template-", f"{name}-"), encoding="utf-8")
    return folder


def test_the_template_is_found_listed_and_builds_each_preset(cli, tmp_path):
    plugin = Registry().models["template"]
    assert plugin.ok and plugin.description.startswith("Copy-me example of a model plugin")
    listing = cli("models", cwd=tmp_path, check=True).stdout
    assert "template" in listing and "classification" in listing and "template-small, template-wide" in listing
    assert {"template", "template-small", "template-wide"} <= set(presets("classification"))
    small, pretrained = load_model("classification", "template", CLASSES)  # the plugin name: its default preset
    wide, _ = load_model("classification", "template-wide", CLASSES)
    assert type(small).__name__ == "TemplateConvNetForImageClassification" and not pretrained
    assert small.config.hidden_sizes == [16, 32, 64] and wide.config.hidden_sizes == [32, 64, 128, 256]
    assert small.config.id2label == dict(enumerate(CLASSES))
    # the engine's classification adapter drives it; a pretrained copy's backbone group is the plugin's
    assert backbone_prefix(small) == "convnet"
    groups = {g.name: g for g in grouped(small, pretrained=True, backbone_lr_multiplier=0.1).parameter_groups()}
    assert groups["backbone/decay"].lr_multiplier == 0.1 and groups["default/decay"].lr_multiplier == 1.0
    assert all(n.startswith("convnet.") for n in groups["backbone/decay"].names)


def test_a_saved_plugin_model_loads_by_folder_in_a_fresh_process(cli, tmp_path):
    model, _ = load_model("classification", "template-small", CLASSES)
    model.save_pretrained(tmp_path / "saved")
    assert '"model_type": "template_convnet"' in (tmp_path / "saved" / "config.json").read_text()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    # a new process has registered nothing: config.json's model_type finds the plugin
    code = (f"import torch; from framework.vision.models import load_model\n"
            f"m, p = load_model('classification', {str(tmp_path / 'saved')!r}, {CLASSES!r})\n"
            f"w = torch.load({str(tmp_path / 'weights.pt')!r})\n"
            f"assert p and all(torch.equal(w[k], v) for k, v in m.state_dict().items()), 'weights differ'\n"
            f"print(type(m).__name__)")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("TemplateConvNetForImageClassification")


def test_a_user_model_folder_trains_by_name_with_no_engine_change(cli, tmp_path):
    plugins = tmp_path / "plugins"
    user_model(plugins)
    listing = cli("models", "--plugin-path", str(plugins), cwd=tmp_path, check=True).stdout
    assert "my_convnet" in listing and str(plugins) in listing
    proc = cli("run", "tasks=classification", f"engine.plugin_paths=[{plugins}]", "task.model.name=my_convnet-small",
               "task.max_epochs=2", f"engine.output_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "my_convnet_type my_convnet-small preset (" in proc.stdout and "random init" in proc.stdout
    assert "ImageNet mean" not in proc.stderr  # a random-init preset: no pretrained statistics to miss
    [run] = load_runs(tmp_path / "out")
    assert run["state"] == "done" and 0.0 <= run["best/test_acc"] <= 1.0
    assert run["task.model.name"] == "my_convnet-small"


def test_model_plugin_mistakes_are_one_line_each(cli, tmp_path):
    plugins = tmp_path / "plugins"
    wrong_type = user_model(plugins, "wrong_type")
    text = (wrong_type / "configuration.py").read_text()
    (wrong_type / "configuration.py").write_text(text.replace('model_type = "wrong_type_type"', 'model_type = "other"'))
    missing_class = user_model(plugins, "missing_class")
    text = (missing_class / "default.yaml").read_text()
    (missing_class / "default.yaml").write_text(text.replace("classification: TemplateConvNetForImageClassification",
                                                             "classification: NoSuchClass"))
    no_readme = user_model(plugins, "no_readme")
    (no_readme / "README.md").unlink()
    bad_kind = user_model(plugins, "bad_kind")
    text = (bad_kind / "default.yaml").read_text()
    (bad_kind / "default.yaml").write_text(text.replace("classification: Template", "depth: Template"))

    registry = Registry([plugins])
    assert "is missing README.md" in registry.models["no_readme"].problem
    assert "unknown task kind 'depth'" in registry.models["bad_kind"].problem
    with pytest.raises(PluginError, match="no PretrainedConfig subclass with model_type = 'wrong_type_type'"):
        load_model("classification", "wrong_type", CLASSES, plugin_paths=[str(plugins)])
    with pytest.raises(PluginError, match=r"modeling.py: no class NoSuchClass \(default.yaml model.auto_classes.classification\)"):
        load_model("classification", "missing_class", CLASSES, plugin_paths=[str(plugins)])
    with pytest.raises(FrameworkError, match="serves classification, not object_detection"):
        load_model("object_detection", "template", CLASSES)
    listing = cli("models", "--plugin-path", str(plugins), cwd=tmp_path, check=True).stdout
    assert [line.split()[1] for line in listing.splitlines() if line.startswith(("no_readme", "bad_kind"))] == ["broken"] * 2
    checked = cli("models", "--check", "--plugin-path", str(plugins), cwd=tmp_path, check=True).stdout
    states = {line.split()[0]: line.split()[1] for line in checked.splitlines()[2:]}
    assert {name: states.get(name) for name in ("bad_kind", "missing_class", "no_readme", "template", "wrong_type")} == {
                      "bad_kind": "broken", "missing_class": "broken", "no_readme": "broken", "template": "ok",
                      "wrong_type": "broken"}, checked
    assert "no class NoSuchClass" in checked and "no config class with model_type = 'wrong_type_type'" in checked
    # a typo in the name: the run stops before training, naming the close preset
    proc = cli("run", "tasks=classification", "task.model.name=templte-small", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean the preset 'template-small'?" in proc.stderr


def test_a_folder_of_an_unknown_architecture_names_the_fix(tmp_path):
    model, _ = load_model("classification", "template", CLASSES)
    model.save_pretrained(tmp_path / "saved")
    config = tmp_path / "saved" / "config.json"
    config.write_text(config.read_text().replace("template_convnet", "nobody_knows_this"))
    with pytest.raises(FrameworkError, match="needs its model plugin on the plugin path"):
        load_model("classification", str(tmp_path / "saved"), CLASSES)



def test_conformance_checks_a_model_folder_on_the_task_of_each_kind_it_serves(cli, tmp_path):
    plugins = tmp_path / "plugins"
    user_model(plugins)
    proc = cli("conformance", str(plugins), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("contract", "step", "same_seed", "checkpoint", "diverged"):
        assert f"classification[my_convnet] x adamw_baseline: {check} pass" in proc.stdout
    assert "5 passed, 0 failed" in proc.stdout
