# python -m pytest tests/test_recipe.py -q
"""The training recipe is the task's and every optimizer trains it alike: the `schedule` section, a task's
values of one optimizer's own hyperparameters, the schedule keys an optimizer replaces (recorded in
schedule.overridden_by), and the one-line errors for the old spellings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from framework.config import parse_overrides
from framework.config.grid import RunSpec, expand
from framework.config.registry import PLUGIN_PATH_ENV, Registry
from framework.errors import ConfigError

from .conftest import REPO

STEP_90_95 = {"name": "step", "warmup_steps": 0, "warmup_fraction": 0.0, "eta_min_factor": 0.0,
              "decay_milestones": [0.9, 0.95], "decay_gamma": 0.1, "poly_power": 1.0}


@pytest.fixture(autouse=True)
def _no_user_plugins(monkeypatch):
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)


def grid(*args: str, plugins: Path | None = None) -> list[RunSpec]:
    return expand(parse_overrides(list(args)), Registry([plugins] if plugins else []))


def problems(*args: str, plugins: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        grid(*args, plugins=plugins)
    return info.value.problems


def user_plugin(root: Path, kind: str, source: str, name: str, edit) -> Path:
    """A copy of the bundled plugin `source` called `name` under root, its default.yaml passed through `edit`."""
    folder = root / f"{kind}s" / name
    shutil.copytree(REPO / f"{kind}s" / source, folder, ignore=shutil.ignore_patterns("__pycache__"))
    defaults = yaml.safe_load((folder / "default.yaml").read_text())
    defaults[kind]["name"] = name
    edit(defaults)
    (folder / "default.yaml").write_text(f"# framework run {kind}s={name}\n" + yaml.safe_dump(defaults))
    return folder / "default.yaml"


def test_every_optimizer_trains_the_tasks_schedule():
    adamw, lion = grid("tasks=coco_panoptic", "optimizers=adamw_baseline,lion")
    for run in (adamw, lion):
        assert run.config["schedule"] == {**STEP_90_95, "overridden_by": {}}
    # the task's values of adamw_baseline's own hyperparameters reach adamw_baseline alone
    assert (adamw.config["optimizer"]["learning_rate"], adamw.config["optimizer"]["weight_decay"]) == (1e-4, 0.05)
    lion_defaults = yaml.safe_load((REPO / "optimizers" / "lion" / "default.yaml").read_text())["optimizer"]
    assert lion.config["optimizer"]["weight_decay"] == lion_defaults["weight_decay"]
    # the engine's schedule is the recipe of a task that sets none of its keys
    (template,) = grid("tasks=template", "optimizers=lion")
    assert template.config["schedule"]["name"] == "cosine"


def test_an_optimizer_that_replaces_schedule_keys_is_recorded_and_the_command_line_still_wins():
    (free,) = grid("tasks=classification", "optimizers=adamw_schedulefree")
    # constant after the task's own warm-up (10 %): only the replaced key changes, and the run says so
    assert free.config["schedule"]["name"] == "constant"
    assert free.config["schedule"]["warmup_fraction"] == 0.1
    assert free.config["schedule"]["overridden_by"] == {"name": "adamw_schedulefree"}
    (cli,) = grid("tasks=classification", "optimizers=adamw_schedulefree", "schedule.name=cosine")
    assert (cli.config["schedule"]["name"], cli.config["schedule"]["overridden_by"]) == ("cosine", {})
    assert cli.run_id != free.run_id
    # a replacement that changes nothing (the task's recipe is already step) is no override
    (stepwise,) = grid("tasks=coco_panoptic", "optimizers=sgd_stepwise")
    assert stepwise.config["schedule"]["overridden_by"] == {}
    (on_digits,) = grid("tasks=digits", "optimizers=sgd_stepwise")
    assert on_digits.config["schedule"]["overridden_by"] == {"name": "sgd_stepwise"}


def test_a_run_records_the_override_and_checks_the_warmup_against_its_length(tmp_path):
    """Through `run.execute`, the code path of `framework run`: the config.yaml holds the override; a warm-up
    longer than the run (known once the data is read: 20 steps of digits per epoch) fails it naming the key."""
    from .cells import run_cell

    spec, outcome, run_dir = run_cell(tmp_path, "tasks=digits", "optimizers=adamw_schedulefree", "task.max_epochs=1")
    assert outcome.state == "done", outcome.error
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["schedule"]["overridden_by"] == {"name": "adamw_schedulefree"}
    assert written["schedule"]["name"] == "constant"
    spec, outcome, run_dir = run_cell(tmp_path, "tasks=digits", "task.max_epochs=1", "schedule.warmup_steps=500")
    assert outcome.state == "failed"
    assert "schedule.warmup_steps: 500 warm-up steps take the whole run of 20 steps" in outcome.error


def test_a_command_line_or_experiment_optimizer_value_applies_to_every_optimizer(tmp_path):
    runs = grid("tasks=coco_panoptic", "optimizers=adamw_baseline,lion", "optimizer.learning_rate=3e-4")
    assert [r.config["optimizer"]["learning_rate"] for r in runs] == [3e-4, 3e-4]
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("# framework run -e exp.yaml\ntasks: [coco_panoptic]\noptimizers: [adamw_baseline, lion]\n"
                          "schedule: {warmup_steps: 100}\n")
    from framework.config import combine, load_experiment

    runs = expand(combine(load_experiment(experiment), parse_overrides([])), Registry())
    assert [r.config["schedule"]["warmup_steps"] for r in runs] == [100, 100]


def test_old_spellings_say_the_new_one():
    found = problems("tasks=digits", "optimizer.warmup_steps=10", "optimizer.schedule=step")
    assert ("optimizer.warmup_steps (command line): unknown key; the schedule is its own section, the same for "
            "every optimizer: write schedule.warmup_steps [task digits, optimizer adamw_baseline]") in found
    assert any(p.startswith("optimizer.schedule (command line): unknown key;") and "write schedule.name" in p for p in found)


def test_a_task_sets_optimizer_values_one_way(tmp_path):
    def flat(defaults):  # the spelling of old: optimizer values and schedule keys straight under optimizer
        defaults["optimizer"] = {"name": "adamw_baseline", "learning_rate": 1e-2, "warmup_steps": 5,
                                 "adamw_basline": {"learning_rate": 1e-3}}

    path = user_plugin(tmp_path, "task", "template", "mytask", flat)
    found = problems("tasks=mytask", plugins=tmp_path)
    assert len(found) == 3, found
    assert (f"optimizer.learning_rate ({path}): a task sets an optimizer's own hyperparameters for that optimizer "
            "alone: write optimizer.adamw_baseline.learning_rate (`learning_rate:` under `adamw_baseline:` in the "
            "optimizer section)") in found
    assert (f"optimizer.warmup_steps ({path}): the schedule is the task's recipe for every optimizer: move it to the "
            "task's schedule section as schedule.warmup_steps") in found
    assert any(p.startswith(f"optimizer.adamw_basline ({path}): unknown optimizer 'adamw_basline'")
               and "did you mean adamw_baseline?" in p for p in found)


def test_an_optimizer_may_not_change_the_rest_of_the_recipe(tmp_path):
    def clip(defaults):
        defaults["engine"] = {"gradient_clip_val": 1.0}

    path = user_plugin(tmp_path, "optimizer", "adamw_baseline", "clipped", clip)
    (found,) = problems("tasks=digits", "optimizers=clipped", plugins=tmp_path)
    assert found.startswith(f"optimizer 'clipped' is broken: {path}: section engine is not allowed in an "
                            "optimizer's default.yaml")

    def bad_key(defaults):
        defaults["schedule"] = {"nmae": "constant"}

    path = user_plugin(tmp_path, "optimizer", "adamw_baseline", "typo", bad_key)
    (found,) = problems("tasks=digits", "optimizers=typo", plugins=tmp_path)
    assert found.startswith(f"schedule.nmae ({path}): unknown key; did you mean schedule.name?")


def test_a_warmup_that_takes_the_whole_run_is_reported_before_it_runs():
    (found,) = problems("tasks=digits", "task.max_epochs=null", "task.max_steps=50", "schedule.warmup_steps=50")
    assert found.startswith("schedule.warmup_steps: 50 warm-up steps take the whole run of 50 steps")
    (found,) = problems("tasks=digits", "task.max_epochs=null", "task.max_steps=10", "schedule.warmup_fraction=0.99")
    assert found.startswith("schedule.warmup_fraction: 0.99 of the run's 10 steps is 10 warm-up steps")
    grid("tasks=digits", "schedule.warmup_steps=5000")  # by epochs: checked when the run knows its length


def test_cli_dry_run_shows_each_optimizers_schedule(cli, tmp_path):
    result = cli("run", "tasks=coco_panoptic", "optimizers=adamw_baseline,lion", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[2]: line for line in result.stdout.splitlines() if line.split()[1:2] == ["coco_panoptic"]}
    assert set(lines) == {"adamw_baseline", "lion"}
    for line in lines.values():
        assert "step x0.1 at 90%, 95% of all steps" in line
    free = cli("run", "tasks=classification", "optimizers=adamw_schedulefree", "--dry-run", cwd=tmp_path)
    assert "warm-up 10%, then constant (adamw_schedulefree replaced name)" in free.stdout


def test_cli_bad_task_optimizer_section_is_one_line_and_exit_2(cli, tmp_path):
    def flat(defaults):
        defaults["optimizer"]["learning_rate"] = 1e-2

    user_plugin(tmp_path, "task", "template", "mytask", flat)
    result = cli("run", "tasks=mytask", "--dry-run", cwd=tmp_path, env={PLUGIN_PATH_ENV: str(tmp_path)})
    assert result.returncode == 2, result.stdout
    (line,) = [line for line in result.stderr.splitlines() if "mytask" in line]
    assert "optimizer.learning_rate (" in line and "write optimizer.adamw_baseline.learning_rate" in line
