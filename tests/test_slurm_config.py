# python -m pytest tests/test_slurm_config.py   (no cluster needed)
"""What the slurm executor asks sbatch for: layered sbatch arguments, time formats, devices."""

from __future__ import annotations

import pytest

from framework.config import combine, load_experiment, parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.errors import FrameworkError
from framework.executors.slurm import parse_minutes, reconcile, sbatch_parameters

from .conftest import flaky_plugin


@pytest.mark.parametrize("value, minutes", [
    (30, 30), (2.5, 3), ("45", 45), ("10:30", 11), ("01:00:00", 60), ("1-00", 1440), ("1-02:30", 1590),
    ("0-00:00:30", 1),
])
def test_sbatch_time_formats(value, minutes):
    assert parse_minutes(value) == minutes


def test_an_unreadable_time_names_the_key():
    with pytest.raises(FrameworkError, match="engine.sbatch_args.time"):
        parse_minutes("two hours")


def _parameters(tmp_path, experiment: str, *overrides: str) -> dict:
    plugins = flaky_plugin(tmp_path / "plugins")
    path = tmp_path / "experiment.yaml"
    path.write_text(experiment)
    request = combine(load_experiment(path), parse_overrides(["tasks=flaky", f"engine.plugin_paths=[{plugins}]", *overrides]))
    (spec,) = expand(request, Registry(request.plugin_paths()))
    return sbatch_parameters(spec.config, spec.task)


def test_sbatch_arguments_are_layered_task_then_experiment_then_command_line(tmp_path):
    experiment = "engine:\n  sbatch_args:\n    mem: 8G\n    reservation: lab\n  slurm:\n    time_factor: 1.5\n"
    # the task's default.yaml asks for time 00:05:00; the factor scales it
    parameters = _parameters(tmp_path, experiment, "engine.sbatch_args.cpus_per_task=4")
    assert parameters["time"] == 8  # 5 min x 1.5, rounded up
    assert parameters["mem"] == "8G" and parameters["cpus_per_task"] == 4
    assert parameters["additional_parameters"] == {"reservation": "lab"}  # not a submitit name: passed through
    assert parameters["ntasks_per_node"] == 1 and "gpus_per_node" not in parameters
    later = _parameters(tmp_path, experiment, "engine.sbatch_args.time=1:00:00", "engine.sbatch_args.mem=16G")
    assert later["time"] == 90 and later["mem"] == "16G"


def test_several_devices_ask_for_one_task_per_device_and_gpus_when_on_gpu(tmp_path):
    parameters = _parameters(tmp_path, "{}\n", "engine.devices=2", "engine.accelerator=gpu",
                             "engine.slurm.setup=[module load cuda]")
    assert parameters["ntasks_per_node"] == 2 and parameters["gpus_per_node"] == 2
    assert parameters["setup"] == ["module load cuda"]


def test_the_scheduler_state_decides_for_cells_a_job_still_owns():
    pending = {"state": "pending", "job_id": "7_1"}
    assert reconcile(pending, {"7_1": "PENDING"}) == ("pending", None)
    assert reconcile(pending, {"7_1": "RUNNING"}) == ("running", None)
    assert reconcile({"state": "requeued", "job_id": "7_1"}, {"7_1": "PENDING"}) == ("requeued", None)
    state, note = reconcile({"state": "running", "job_id": "7_1"}, {"7_1": "CANCELLED"})
    assert state == "failed" and "CANCELLED" in note and "resubmits" in note
    assert reconcile({"state": "done", "job_id": "7_1"}, {"7_1": "COMPLETED"}) == ("done", None)


def test_the_plot_job_asks_where_the_grid_runs_but_for_its_own_small_resources(tmp_path):
    """A cluster may refuse jobs without its partition, account, QOS (or reservation, constraint, cluster):
    the plot job takes those from the grid's sbatch_args, but not its time, memory, CPUs or GPUs."""
    from submitit.slurm.slurm import _make_sbatch_string

    from framework.executors.slurm import plot_parameters

    experiment = ("engine:\n  accelerator: gpu\n  devices: 2\n  sbatch_args:\n    partition: gpu\n    account: lab\n"
                  "    qos: high\n    reservation: course\n    constraint: a100\n    clusters: north\n    gres: gpu:2\n"
                  "    mem: 64G\n    cpus-per-task: 16\n    time: '2-00:00:00'\n")
    plugins = flaky_plugin(tmp_path / "plugins")
    path = tmp_path / "experiment.yaml"
    path.write_text(experiment)
    request = combine(load_experiment(path), parse_overrides(["tasks=flaky", f"engine.plugin_paths=[{plugins}]"]))
    (spec,) = expand(request, Registry(request.plugin_paths()))
    sbatch = _make_sbatch_string(command="plot", folder=tmp_path, **plot_parameters(spec.config["engine"], ["41", "42"]))
    for flag in ("--partition=gpu", "--account=lab", "--qos=high", "--reservation=course", "--constraint=a100",
                 "--clusters=north", "--dependency=afterany:41:42", "--time=30", "--cpus-per-task=2", "--mem=8G"):
        assert f"#SBATCH {flag}\n" in sbatch, flag
    assert "gpu:2" not in sbatch and "--gpus" not in sbatch and "64G" not in sbatch and "2880" not in sbatch
