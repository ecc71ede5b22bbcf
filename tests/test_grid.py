# python -m pytest tests/test_grid.py -q
"""The grid: deterministic expansion of tasks x optimizers x sweep axes, stable run ids, deduplication."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.config import combine, load_experiment, parse_overrides
from framework.config.devices import device_type, identity_device, trained_precision
from framework.config.grid import RunSpec, describe_axes, expand, run_id
from framework.config.registry import PLUGIN_PATH_ENV, Registry
from framework.errors import ConfigError

from .conftest import REPO


@pytest.fixture(autouse=True)
def _no_user_plugins(monkeypatch):
    monkeypatch.delenv(PLUGIN_PATH_ENV, raising=False)


def grid(*args: str) -> list[RunSpec]:
    return expand(parse_overrides(list(args)), Registry())


def single_id(*args: str) -> str:
    (run,) = grid("tasks=digits", *args)
    return run.run_id


def test_order_is_task_optimizer_then_axes_with_the_last_fastest():
    runs = grid("tasks=template,digits", "optimizers=sgd_baseline,adamw_baseline",
                "optimizer.learning_rate=0.1,0.01", "engine.seed=1,2")
    assert len(runs) == 16
    got = [(r.task, r.optimizer, r.sweep["optimizer.learning_rate"], r.sweep["engine.seed"]) for r in runs[:5]]
    assert got == [
        ("template", "sgd_baseline", 0.1, 1), ("template", "sgd_baseline", 0.1, 2),
        ("template", "sgd_baseline", 0.01, 1), ("template", "sgd_baseline", 0.01, 2),
        ("template", "adamw_baseline", 0.1, 1),
    ]
    assert [r.task for r in runs] == ["template"] * 8 + ["digits"] * 8
    for run in runs:  # each run's config carries its own sweep values
        assert run.config["optimizer"]["learning_rate"] == run.sweep["optimizer.learning_rate"]
        assert run.config["engine"]["seed"] == run.sweep["engine.seed"]
        assert (run.config["task"]["name"], run.config["optimizer"]["name"]) == (run.task, run.optimizer)
    assert describe_axes(runs) == ["optimizer.learning_rate", "engine.seed"]


def test_expansion_is_pure_and_repeatable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("tasks=digits", "optimizers=adamw_baseline,sgd_baseline", "engine.seed=1,2,3")
    first, second = grid(*args), grid(*args)
    assert [(r.run_id, r.config) for r in first] == [(r.run_id, r.config) for r in second]
    assert len({r.run_id for r in first}) == 6
    assert all(len(r.run_id) == 12 and int(r.run_id, 16) >= 0 for r in first)
    assert list(tmp_path.iterdir()) == []  # nothing written: not even the output folder


def test_seeds_are_an_axis_like_any_other():
    runs = grid("tasks=digits", "engine.seed=1,2,3")
    assert [r.config["engine"]["seed"] for r in runs] == [1, 2, 3]
    assert [r.sweep for r in runs] == [{"engine.seed": 1}, {"engine.seed": 2}, {"engine.seed": 3}]
    assert grid("tasks=digits")[0].sweep == {}


def test_where_and_how_a_run_executes_does_not_change_its_id():
    base = single_id()
    for override in ("engine.output_dir=/elsewhere", "engine.data_workers=4", "engine.progress=true",
                     "engine.plugin_paths=[/x]", "engine.sbatch_args.mem=4G", "evaluation.plot.format=.2f",
                     "evaluation.checkpoint=last"):
        assert single_id(override) == base, override


def test_what_a_run_computes_changes_its_id():
    base = single_id()
    ids = {single_id(o) for o in ("optimizer.learning_rate=0.01", "engine.seed=1", "task.batch_size=32",
                                  "optimizers=sgd_baseline", "engine.precision=64-true")}
    assert base not in ids and len(ids) == 5
    assert single_id("optimizer.learning_rate=1e-3") == base  # setting the default is no change


def test_run_id_ignores_key_order_and_depends_only_on_identity():
    (run,) = grid("tasks=digits")
    reordered = {section: dict(reversed(list(values.items()))) for section, values in reversed(list(run.config.items()))}
    assert run_id(reordered) == run.run_id
    moved = {**run.config, "engine": {**run.config["engine"], "output_dir": "/tmp/x"}}
    assert run_id(moved) == run.run_id
    assert run.run_dir("out") == Path("out") / "digits" / "adamw_baseline" / run.run_id


def test_equal_values_written_differently_are_one_run():
    runs = grid("tasks=digits", "optimizer.learning_rate=1e-3,0.001,1.0e-3,1e-2", "engine.seed=1,2")
    assert [(r.config["optimizer"]["learning_rate"], r.config["engine"]["seed"]) for r in runs] == [
        (1e-3, 1), (1e-3, 2), (1e-2, 1), (1e-2, 2)]
    assert len(grid("tasks=digits", "optimizer.learning_rate=1,1.0")) == 1  # the int is widened to a float


def test_a_sweep_over_list_values():
    runs = grid("tasks=digits", "schedule.name=step", "schedule.decay_milestones=[0.5,0.75],[0.8,0.9]")
    assert [r.config["schedule"]["decay_milestones"] for r in runs] == [[0.5, 0.75], [0.8, 0.9]]
    assert runs[0].run_id != runs[1].run_id


@pytest.mark.parametrize(("schedule", "key", "value", "matters"), [
    ("cosine", "decay_milestones", "[0.5,0.75]", False), ("cosine", "decay_gamma", "0.5", False),
    ("cosine", "poly_power", "2.0", False), ("cosine", "eta_min_factor", "0.1", True),
    ("step", "decay_milestones", "[0.5,0.75]", True), ("step", "decay_gamma", "0.5", True),
    ("step", "eta_min_factor", "0.1", False), ("step", "poly_power", "2.0", False),
    ("poly", "poly_power", "2.0", True), ("poly", "eta_min_factor", "0.1", True),
    ("poly", "decay_milestones", "[0.5,0.75]", False),
    ("constant", "eta_min_factor", "0.1", False), ("constant", "decay_gamma", "0.5", False),
    ("constant", "warmup_steps", "3", True),
])
def test_schedule_keys_the_schedule_never_reads_do_not_split_a_run(schedule, key, value, matters):
    chosen = f"schedule.name={schedule}"
    assert (single_id(chosen, f"schedule.{key}={value}") != single_id(chosen)) is matters


def test_the_identity_names_the_device_kind_and_precision_a_run_trains_in():
    """`auto` on this CPU machine is `cpu`; a half precision on a CPU trains in 32-true, so it is the
    32-true run. (The CPU CI machine; on a GPU machine `auto` is cuda and bf16 stays bf16.)"""
    if device_type("auto") != "cpu":
        pytest.skip("this machine has a GPU: accelerator auto trains on it")
    cpu = single_id("engine.accelerator=cpu")
    assert single_id() == cpu  # accelerator auto, 32-true
    assert single_id("engine.precision=bf16-mixed") == cpu
    assert single_id("engine.accelerator=cpu", "engine.precision=16-mixed") == cpu
    assert single_id("engine.precision=64-true") != cpu


def test_a_gpu_run_is_never_a_cpu_run():
    """Where cuda is chosen, half precision stays what it is: the same configuration trained on a GPU
    has its own id, and bf16 is not 32-true there."""
    cuda, cpu = single_id("engine.accelerator=cuda"), single_id("engine.accelerator=cpu")
    assert cuda != cpu
    assert single_id("engine.accelerator=cuda", "engine.precision=16-mixed") != cuda  # every CUDA GPU has fp16
    assert trained_precision("bf16-mixed", "cuda", bf16_supported=True) == "bf16-mixed"
    assert trained_precision("bf16-mixed", "cuda", bf16_supported=False) == "32-true"  # before Ampere
    assert trained_precision("16-mixed", "cuda", bf16_supported=False) == "16-mixed"
    assert trained_precision("bf16-mixed", "cpu") == "32-true"
    assert trained_precision("bf16-mixed", "mps") == "bf16-mixed"


@pytest.mark.parametrize(("engine", "device"), [
    ({"accelerator": "cpu", "executor": "slurm", "sbatch_args": {"gres": "gpu:1"}}, "cpu"),  # asked for cpu
    ({"accelerator": "cuda", "executor": "local"}, "cuda"),
    ({"accelerator": "auto", "executor": "slurm", "sbatch_args": {"gres": "gpu:a100:1"}}, "cuda"),
    ({"accelerator": "auto", "executor": "slurm", "sbatch_args": {"gpus-per-node": 2}}, "cuda"),
    ({"accelerator": "auto", "executor": "slurm", "sbatch_args": {"gpus": 1}}, "cuda"),
    ({"accelerator": "gpu", "executor": "slurm", "sbatch_args": {}}, "cuda"),  # the executor asks for the GPUs
    ({"accelerator": "auto", "executor": "slurm", "sbatch_args": {"mem": "4G", "gres": "tmpdisk:10"}}, "cpu"),
])
def test_slurm_cells_resolve_auto_by_what_they_ask_for(engine, device):
    """The grid of a SLURM executor is expanded on a login node, often without a GPU: `auto` is read from
    the cell's request, not from this machine."""
    assert identity_device(engine) == device


def test_slurm_identity_follows_the_gpu_request():
    slurm = ("engine.executor=slurm", "engine.precision=16-mixed")
    on_gpu = single_id(*slurm, "engine.sbatch_args.gres=gpu:1")
    assert on_gpu == single_id(*slurm, "engine.accelerator=gpu") == single_id(*slurm, "engine.sbatch_args.gpus=1")
    assert on_gpu == single_id("engine.accelerator=cuda", "engine.precision=16-mixed")  # a local GPU run
    bf16 = single_id("engine.executor=slurm", "engine.precision=bf16-mixed", "engine.sbatch_args.gpus=1")
    assert bf16 != on_gpu and bf16 != single_id("engine.executor=slurm", "engine.sbatch_args.gpus=1")  # the GPU is unknown: bf16
    assert single_id(*slurm) == single_id("engine.accelerator=cpu")  # no GPU asked for: a CPU job in 32-true


def _bundled(kind: str) -> list[str]:
    return sorted(p.name for p in (REPO / kind).iterdir() if (p / "default.yaml").is_file())


def test_default_optimizer_and_all_selection():
    runs = grid("tasks=all")
    assert [r.task for r in runs] == [t for t in _bundled("tasks") if t != "template"]  # template is excluded
    assert ("digits", "adamw_baseline") in [(r.task, r.optimizer) for r in runs]  # each task's default optimizer
    assert [r.optimizer for r in grid("tasks=digits", "optimizers=all")] == [o for o in _bundled("optimizers") if o != "template"]
    assert len(grid("tasks=digits,digits")) == 1


def test_selection_problems_are_reported_together_with_value_problems():
    with pytest.raises(ConfigError) as info:
        grid("tasks=digits,digts", "optimizers=adamw_baseline,adamw2", "task.batch_size=abc")
    found = info.value.problems
    assert len(found) == 3
    assert f"unknown task 'digts' (did you mean 'digits'? known: {', '.join(_bundled('tasks'))})" in found
    assert any(p.startswith("unknown optimizer 'adamw2' (") and "adamw_baseline" in p for p in found)
    assert any(p.startswith("task.batch_size (command line): expected an integer") and p.endswith(
        "[task digits, optimizer adamw_baseline]") for p in found)


def test_no_task_selected_lists_the_choices():
    with pytest.raises(ConfigError, match=r"no task selected.*known: .*digits.*template"):
        grid("optimizer.learning_rate=1e-3")


def test_a_bad_sweep_value_is_reported_once():
    with pytest.raises(ConfigError) as info:
        grid("tasks=digits", "optimizer.learning_rate=1e-3,fast", "engine.seed=1,2,3")
    (found,) = info.value.problems
    assert found.startswith("optimizer.learning_rate (sweep command line): expected a number, got 'fast'")


def test_experiment_sweep_expands_in_file_order(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("tasks: [digits]\nsweep:\n  engine.seed: [1, 2]\n  optimizers: [sgd_baseline, adamw_baseline]\n"
                    "  optimizer.weight_decay: [0, 1e-4]\n", encoding="utf-8")
    runs = expand(combine(load_experiment(path), parse_overrides([])), Registry())
    assert [(r.optimizer, r.config["engine"]["seed"], r.config["optimizer"]["weight_decay"]) for r in runs[:3]] == [
        ("sgd_baseline", 1, 0.0), ("sgd_baseline", 1, 1e-4), ("sgd_baseline", 2, 0.0)]
    assert len(runs) == 8


def test_cli_dry_run_prints_the_grid(cli, tmp_path):
    result = cli("run", "tasks=digits", "optimizers=adamw_baseline,sgd_baseline",
                 "optimizer.learning_rate=1e-3,0.001,1e-2", "--dry-run", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4 runs (dry run: nothing was run)" in result.stdout
    for run in grid("tasks=digits", "optimizers=adamw_baseline,sgd_baseline", "optimizer.learning_rate=1e-3,1e-2"):
        assert run.run_id in result.stdout  # the ids do not depend on the output folder
    assert not (tmp_path / "out").exists()


def test_shared_schedule_keys_are_checked_before_anything_runs():
    with pytest.raises(ConfigError) as info:
        grid("tasks=digits", "optimizers=adamw_baseline,sgd_baseline", "schedule.name=cosin",
             "schedule.eta_min_factor=2")
    found = info.value.problems
    assert ("schedule.name: unknown schedule 'cosin' (known: cosine, step, poly, constant) "
            "[task digits, optimizer adamw_baseline]") in found
    assert any(p.startswith("schedule.eta_min_factor: must be in [0, 1]") for p in found)
    assert len(found) == 2  # each problem once, although both optimizers have it


def test_overrides_may_follow_options(tmp_path):
    """`framework run tasks=digits --dry-run key=v`: the overrides after an option join the others, in order."""
    from .conftest import run_cli

    done = run_cli("run", "tasks=digits", "--dry-run", "optimizer.learning_rate=1e-3,1e-2", "-o", str(tmp_path / "out"),
                   "optimizer.learning_rate=3e-3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # the last value wins, as on one line
    assert "1 runs (dry run" in done.stdout and single_id("tasks=digits", "optimizer.learning_rate=3e-3") in done.stdout
    bad = run_cli("run", "tasks=digits", "--dry-run", "--bogus", cwd=tmp_path)
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr


def test_who_replaced_a_schedule_key_is_not_part_of_the_identity():
    """adamw_schedulefree's own constant schedule and the same schedule set on the command line train the
    same thing: one run, although only the first records overridden_by."""
    own = grid("tasks=digits", "optimizers=adamw_schedulefree")[0]
    given = grid("tasks=digits", "optimizers=adamw_schedulefree", "schedule.name=constant")[0]
    assert own.config["schedule"]["overridden_by"] != given.config["schedule"]["overridden_by"]
    assert own.run_id == given.run_id
