# python -m pytest tests/test_contract.py
"""The plugin contract, checked before anything trains, and `framework conformance` on plugin folders
outside the repository: plugins written to tmp_path as copies of the templates, some broken on purpose,
refused through the real CLI with one line each (exit 2) and nothing written; `framework.testing` gives
an author's pytest the same checks."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.training.conformance import CheckFailed

from .conftest import REPO, run_cli

TEMPLATE_TASK, TEMPLATE_OPTIMIZER = REPO / "tasks" / "template", REPO / "optimizers" / "template"


def copy_plugin(root: Path, kind: str, name: str, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """A copy of the bundled template `kind` ("task" or "optimizer") named `name`; `edits`: per file, a
    (text, replacement) pair that must occur in it."""
    folder = root / f"{kind}s" / name
    shutil.copytree(TEMPLATE_TASK if kind == "task" else TEMPLATE_OPTIMIZER, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for filename, (old, new) in {"default.yaml": ("name: template", f"name: {name}"), **(edits or {})}.items():
        text = (folder / filename).read_text(encoding="utf-8")
        assert old in text, f"{filename} of the template no longer holds {old!r}"
        (folder / filename).write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


MISSPELLED = {"task.py": ("def get_task(", "def get_taks(")}
IGNORES_GROUPS = {"optimizer.py": ("torch.optim.Adam(groups,", "torch.optim.Adam(model.parameters(), lr=opt.learning_rate, "
                                                               "weight_decay=opt.weight_decay,")}
NOT_AN_OPTIMIZER = {"optimizer.py": ('return {"optimizer": optimizer, "lr_scheduler": scheduler}', "return [scheduler]")}
RAISES = {"optimizer.py": ("import torch\n", "import torch\n\nraise RuntimeError('broken on purpose')\n")}
NOT_A_TASK_MODEL = {"model.py": ("class BlobsModel(TaskModel):", "class BlobsModel(TaskModel.__mro__[1]):  # LightningModule")}
NOT_A_TASK_MODEL_INIT = ("super().__init__(network, optimizer, config)", "super().__init__()\n        self.model = network")
# a loss that depends on an unseeded random number: the same seed gives another first loss
UNSEEDED = {"model.py": ("        loss = F.cross_entropy(self.model(x), y)\n",
                         "        loss = F.cross_entropy(self.model(x), y) * (1 + __import__('random').SystemRandom().random())\n")}


def _errors(proc) -> list[str]:
    return [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith("- ")]


def test_dry_run_refuses_a_misspelled_factory_and_an_optimizer_that_ignores_the_groups(tmp_path):
    plugins = tmp_path / "plugins"
    copy_plugin(plugins, "task", "my_task", MISSPELLED)
    copy_plugin(plugins, "optimizer", "my_opt", IGNORES_GROUPS)
    start = time.perf_counter()
    proc = run_cli("run", "tasks=my_task,digits", "optimizers=my_opt,adamw_baseline", "--dry-run", "-o", str(tmp_path / "results"),
                   cwd=tmp_path, env={"FRAMEWORK_PLUGIN_PATH": str(plugins)})
    assert time.perf_counter() - start < 60
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert _errors(proc) == [
        "- plugins/tasks/my_task/task.py: no function get_task(optimizer, config); found get_taks",
        "- plugins/optimizers/my_opt/optimizer.py: parameter head.bias (group head/no_decay) has weight_decay 0.1, "
        "expected 0 (no_decay parameters: 0); build the optimizer from model.param_groups(lr, weight_decay), not "
        "model.parameters()",
    ], proc.stderr
    assert "(2 problems; nothing was run or written)" in proc.stderr and "runs (dry run" not in proc.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_a_run_is_refused_before_its_first_cell_on_every_executor(tmp_path, executor):
    plugins = tmp_path / "plugins"
    copy_plugin(plugins, "task", "my_task", MISSPELLED)
    proc = run_cli("run", "tasks=my_task", f"engine.executor={executor}", "-o", str(tmp_path / "results"), cwd=tmp_path,
                   env={"FRAMEWORK_PLUGIN_PATH": str(plugins)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert _errors(proc) == ["- plugins/tasks/my_task/task.py: no function get_task(optimizer, config); found get_taks"]
    assert not (tmp_path / "results").exists()


def test_a_target_metric_the_task_never_logs_is_refused(tmp_path):
    proc = run_cli("run", "tasks=template", "task.target_metric=val_f1", "--dry-run", "-o", str(tmp_path / "results"),
                   cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = _errors(proc)
    assert line.endswith("tasks/template/default.yaml: task.target_metric is 'val_f1', which task 'template' never logs "
                         "in validation_step (it logs val_acc, val_loss)")
    assert not (tmp_path / "results").exists()


def test_the_contract_is_checked_once_per_pair_whatever_the_sweep(tmp_path):
    proc = run_cli("run", "tasks=digits,template", "optimizers=all", "engine.seed=1,2", "--dry-run",
                   "-o", str(tmp_path / "results"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "plugin contract: 22 task x optimizer pairs checked" in proc.stdout and "44 runs (dry run" in proc.stdout


def test_a_multi_node_grid_is_checked_on_one_device(tmp_path):
    """The check trains on one CPU: a batch that divides over 3 nodes need not divide over its one device's."""
    done = run_cli("run", "tasks=digits", "engine.executor=slurm", "engine.nodes=3", "task.batch_size=6", "--dry-run",
                   "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 task x optimizer pair checked" in done.stdout


def test_conformance_passes_for_copies_of_the_templates(tmp_path):
    copy_plugin(tmp_path / "plugins", "task", "my_task")
    copy_plugin(tmp_path / "plugins", "optimizer", "my_opt")
    proc = run_cli("conformance", "plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("contract", "step", "same_seed", "checkpoint", "diverged"):
        assert f"my_task x adamw_baseline: {check} pass" in proc.stdout and f"digits x my_opt: {check} pass" in proc.stdout
    assert "10 passed, 0 failed" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugins"]  # nothing written beside it


def test_conformance_names_each_bad_plugin_in_one_line_and_checks_the_others(tmp_path):
    plugins = tmp_path / "plugins"
    copy_plugin(plugins, "task", "misspelled", MISSPELLED)
    copy_plugin(plugins, "task", "plain_module", {**NOT_A_TASK_MODEL})
    model = plugins / "tasks" / "plain_module" / "model.py"
    model.write_text(model.read_text().replace(*NOT_A_TASK_MODEL_INIT))
    copy_plugin(plugins, "task", "good_task")
    copy_plugin(plugins, "optimizer", "ignores_groups", IGNORES_GROUPS)
    copy_plugin(plugins, "optimizer", "not_an_optimizer", NOT_AN_OPTIMIZER)
    copy_plugin(plugins, "optimizer", "raises", RAISES)
    proc = run_cli("conformance", "plugins", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {tmp_path / 'nowhere'}: no such plugin folder (a folder holding tasks/, optimizers/ and/or models/)",
        "error: plugins/tasks/misspelled/task.py: no function get_task(optimizer, config); found get_taks",
        "error: plugins/tasks/plain_module/task.py: get_task returned a BlobsModel as the model; expected an instance of a "
        "TaskModel subclass (from framework.api import TaskModel)",
        "error: plugins/optimizers/ignores_groups/optimizer.py: parameter head.bias (group head/no_decay) has weight_decay "
        "0.1, expected 0 (no_decay parameters: 0); build the optimizer from model.param_groups(lr, weight_decay), not "
        "model.parameters()",
        "error: plugins/optimizers/not_an_optimizer/optimizer.py: configure_optimizers returned list; expected a "
        "torch.optim.Optimizer or a dict {'optimizer': ..., 'lr_scheduler': ...} (what LightningModule.configure_optimizers returns)",
        "error: plugins/optimizers/raises/optimizer.py: fails to import: RuntimeError: broken on purpose",
    ], proc.stderr
    for check in ("contract", "step", "same_seed", "checkpoint", "diverged"):  # the good plugin is checked all the same
        assert f"good_task x adamw_baseline: {check} pass" in proc.stdout
    assert "5 passed, 0 failed, 5 pair(s) broke the contract" in proc.stdout


def test_a_failing_check_exits_1(tmp_path):
    copy_plugin(tmp_path / "plugins", "task", "unseeded", UNSEEDED)
    proc = run_cli("conformance", "plugins", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "unseeded x adamw_baseline: same_seed FAIL" in proc.stdout
    assert "the same seed gave another first loss" in proc.stdout
    assert "unseeded x adamw_baseline: checkpoint pass" in proc.stdout


def test_framework_testing_gives_pytest_the_same_checks(tmp_path, monkeypatch):
    from framework.testing import plugin_checks

    monkeypatch.chdir(tmp_path)
    copy_plugin(tmp_path / "plugins", "task", "my_task")
    copy_plugin(tmp_path / "plugins", "optimizer", "my_opt", IGNORES_GROUPS)
    checks = dict(plugin_checks(tmp_path / "plugins"))
    assert list(checks) == [f"{pair}-{check}" for pair in ("my_task-adamw_baseline", "digits-my_opt")
                            for check in ("contract", "step", "same_seed", "checkpoint", "diverged")]
    checks["my_task-adamw_baseline-contract"]()
    checks["my_task-adamw_baseline-step"]()
    with pytest.raises(CheckFailed, match="plugins/optimizers/my_opt/optimizer.py: parameter head.bias"):
        checks["digits-my_opt-contract"]()
    with pytest.raises(FrameworkError, match="nowhere does not exist"):
        list(plugin_checks(tmp_path / "nowhere"))
