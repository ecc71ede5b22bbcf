# python -m pytest tests/test_slurm_config.py   (no cluster needed)
"""What the slurm executor asks sbatch for: layered sbatch arguments, time formats, devices."""

from __future__ import annotations

import pytest

from framework.config import combine, load_experiment, parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.errors import FrameworkError
from framework.executors.slurm import parse_minutes, reconcile, sbatch_parameters

from .conftest import flaky_plugin, run_cli


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


def test_two_nodes_ask_for_nodes_times_devices_tasks_with_a_gpu_and_cpus_each(tmp_path):
    """engine.nodes=2, devices=4 on GPUs: 2 nodes of 4 tasks, 4 GPUs per node; cpus_per_gpu is what each
    task (one GPU's process) gets. The sbatch script is rendered by submitit as `submit` would send it."""
    from submitit.slurm.slurm import _make_sbatch_string

    parameters = _parameters(tmp_path, "engine:\n  executor: slurm\n  nodes: 2\n  devices: 4\n  accelerator: gpu\n"
                             "  sbatch_args:\n    cpus_per_gpu: 8\n    partition: gpu\n")
    assert (parameters["nodes"], parameters["ntasks_per_node"], parameters["gpus_per_node"]) == (2, 4, 4)
    assert parameters["cpus_per_task"] == 8 and "additional_parameters" not in parameters
    script = _make_sbatch_string(command="cell", folder=tmp_path, map_count=3, **parameters)
    for flag in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--partition=gpu",
                 "--array=0-2%3"):  # parallelism capped at the array's size
        assert f"#SBATCH {flag}\n" in script, flag
    # a gres of its own replaces the derived request when it gives each process its GPU
    own = _parameters(tmp_path, "engine:\n  executor: slurm\n  nodes: 2\n  devices: 4\n  accelerator: gpu\n"
                      "  sbatch_args:\n    gres: gpu:a100:4\n")
    assert own["gres"] == "gpu:a100:4" and "gpus_per_node" not in own and own["nodes"] == 2


def test_the_batch_size_rule_counts_every_process_of_every_node():
    from framework.config.batch_size import micro_batch_problem, micro_batch_size

    assert micro_batch_size(64, 4, 1, nodes=2) == 8  # one optimizer step still sees 64 samples
    assert "engine.devices x engine.nodes x engine.accumulate_grad_batches = 4 x 2 x 3 = 24" in micro_batch_problem(64, 4, 3, 2)


@pytest.mark.parametrize("overrides, message", [
    (["engine.nodes=2"], "engine.nodes: 2 nodes need engine.executor=slurm (the local executor trains on this machine only)"),
    (["engine.executor=slurm", "engine.nodes=0"], "engine.nodes: must be a positive integer, got 0"),
    (["engine.executor=slurm", "engine.nodes=3", "engine.devices=2", "task.batch_size=32"],
     "engine.devices x engine.nodes x engine.accumulate_grad_batches = 2 x 3 x 1 = 6"),
    (["engine.executor=slurm", "engine.accelerator=cpu", "engine.sbatch_args.cpus_per_gpu=8"],
     "error: engine.sbatch_args.cpus_per_gpu: the cell asks for no GPU (engine.accelerator=cpu); use cpus_per_task"),
    (["engine.executor=slurm", "engine.accelerator=gpu", "engine.sbatch_args.cpus_per_gpu=8",
      "engine.sbatch_args.cpus_per_task=8"], "error: engine.sbatch_args: cpus_per_task and cpus_per_gpu exclude each other"),
    (["engine.executor=slurm", "engine.accelerator=gpu", "engine.devices=2", "engine.sbatch_args.gres=gpu:4"],
     "error: engine.sbatch_args.gres=gpu:4 asks for 4 GPUs per node, but engine.devices=2 processes per node use one each"),
])
def test_a_request_sbatch_would_refuse_or_misplace_stops_the_dry_run(tmp_path, overrides, message):
    plugins = flaky_plugin(tmp_path / "plugins")
    done = run_cli("run", "tasks=flaky", f"engine.plugin_paths=[{plugins}]", *overrides, "--dry-run",
                   "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "#SBATCH" not in done.stdout and "Traceback" not in done.stderr


def test_the_slurm_dry_run_prints_each_job_arrays_sbatch_lines(tmp_path):
    """Two resource groups (a CPU cell and a 2-node GPU cell) are two job arrays, each with its lines."""
    plugins = flaky_plugin(tmp_path / "plugins")
    out = tmp_path / "out"
    done = run_cli("run", "tasks=flaky", f"engine.plugin_paths=[{plugins}]", "engine.executor=slurm",
                   "engine.nodes=1,2", "engine.devices=2", "engine.accelerator=gpu", "engine.sbatch_args.cpus_per_gpu=6",
                   "--dry-run", "-o", str(out), cwd=tmp_path, check=True)
    first, second = done.stdout.split("sbatch job array 1: 1 cell (flaky/adamw_baseline)\n")[1].split(
        "sbatch job array 2: 1 cell (flaky/adamw_baseline)\n")
    for lines, nodes in ((first, 1), (second, 2)):
        for flag in (f"--nodes={nodes}", "--ntasks-per-node=2", "--gpus-per-node=2", "--cpus-per-task=6",
                     "--time=5", "--job-name=framework-flaky", "--signal=USR2@90"):
            assert f"#SBATCH {flag}\n" in lines, (flag, lines)
    assert f"{out}/.slurm/<submission time>/" in first
    assert not out.exists()  # a dry run writes nothing
    local = run_cli("run", "tasks=flaky", f"engine.plugin_paths=[{plugins}]", "--dry-run", "-o", str(out), cwd=tmp_path)
    assert local.returncode == 0 and "#SBATCH" not in local.stdout


def test_lightning_reads_a_two_node_jobs_ranks_from_slurm(monkeypatch):
    """The Trainer a SLURM cell builds (trainer_arguments, the strategy and cluster plugin of a job) for the
    4th task of a 2-node x 2-device job: the variables are those srun sets for it. The local cluster has one
    node, so no real 2-node job can start there (docs: README "Running on a SLURM cluster")."""
    import lightning.pytorch as pl

    from framework.config import Node
    from framework.training.run import _cluster_plugins, _strategy
    from framework.training.trainer_options import trainer_arguments

    for name, value in {"FRAMEWORK_SLURM_JOB": "1", "SLURM_JOB_NAME": "framework-digits", "SLURM_JOB_ID": "77",
                        "SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "2", "SLURM_PROCID": "3",
                        "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_NODELIST": "node[1-2]"}.items():
        monkeypatch.setenv(name, value)
    engine = Node({"accelerator": "cpu", "devices": 2, "nodes": 2, "precision": "32-true", "deterministic": False,
                   "accumulate_grad_batches": 1, "gradient_clip_val": 0.0, "gradient_clip_algorithm": "norm"})
    trainer = pl.Trainer(**trainer_arguments(engine), strategy=_strategy(engine.devices * engine.nodes),
                         plugins=_cluster_plugins(), logger=False, enable_checkpointing=False)
    assert (trainer.num_nodes, trainer.world_size, trainer.global_rank, trainer.node_rank, trainer.local_rank) == (2, 4, 3, 1, 1)
