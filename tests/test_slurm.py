# python -m pytest tests/test_slurm.py   (slow: needs the local cluster, ../shared/slurm/start-local-slurm.sh)
"""The slurm executor against a real single-node SLURM cluster (slurmctld, slurmd, slurmdbd for sacct).

Every test submits through the `framework` command, follows the cells with `framework status`'s own code
(run directories + sacct) and checks what a user would check: states, scores, requeues, resubmission.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from framework.commands.status import cell_states
from framework.executors.slurm import ALIVE
from framework.results.run_folder import load_runs, read_scores, read_status, read_status_and_job

from .conftest import flaky_plugin, require_service, run_cli


@functools.cache
def _cluster_up() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sacct") is None:
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _cluster():
    require_service("SLURM cluster", _cluster_up(), "../shared/slurm/start-local-slurm.sh starts one (.ci/run does)")

SLURM = ["engine.executor=slurm", "engine.sbatch_args.time=10"]


def _wait(predicate, what: str, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _states(out: Path, key: str | None = None) -> dict:
    records = cell_states(str(out))
    if key is None:
        return {r["run_id"]: r["state"] for r in records}
    return {str(read_status(Path(r["run_dir"]))["sweep"].get(key)): r for r in records}


def _all_in(out: Path, states: set[str], count: int):
    current = _states(out)
    return len(current) == count and set(current.values()) <= states


def _fit_starts(run_dir: Path) -> list[int]:
    path = run_dir / "fit_starts.txt"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _flat(scores: dict) -> dict:
    scores = dict(scores)
    scores.pop("train")
    return {f"{which}/{k}": v for which, values in scores.items() for k, v in values.items()}


def _submit_flaky(tmp_path: Path, *overrides: str) -> tuple[Path, Path, dict]:
    """Submit one `flaky` cell; returns (output folder, its run directory, its status record)."""
    out = tmp_path / "results"
    run_cli("run", "tasks=flaky", *overrides, *SLURM, "-o", str(out), cwd=tmp_path,
            env={"FRAMEWORK_PLUGIN_PATH": str(flaky_plugin(tmp_path / "plugins"))}, check=True)
    (record,) = cell_states(str(out))
    return out, Path(record["run_dir"]), record


def test_a_grid_submitted_as_an_array_matches_the_local_grid_and_is_plotted(tmp_path):
    grid = ["tasks=digits", "optimizer.learning_rate=1e-3,1e-2", "task.max_epochs=2"]
    out = tmp_path / "slurm"
    submitted = run_cli("run", *grid, *SLURM, "engine.slurm.plot=true", "-o", str(out), cwd=tmp_path, check=True)
    assert "2 submitted as job array" in submitted.stdout and "plot job" in submitted.stdout
    assert set(_states(out).values()) <= {"pending", "running", "done"}  # recorded before any job ran

    _wait(lambda: _all_in(out, {"done"}, 2), "both cells done")
    status = run_cli("status", str(out), cwd=tmp_path, check=True)
    assert "2 done" in status.stdout
    run_cli("run", *grid, "engine.workers=0", "-o", str(tmp_path / "local"), cwd=tmp_path, check=True)
    local = {r["run_id"]: _flat(read_scores(Path(r["run_dir"]))) for r in load_runs(tmp_path / "local")}
    remote = {r["run_id"]: _flat(read_scores(Path(r["run_dir"]))) for r in load_runs(out)}
    assert local.keys() == remote.keys()
    for run_id, scores in local.items():
        assert remote[run_id] == pytest.approx(scores, rel=1e-5), run_id

    _wait(lambda: (out / "plots" / "digits_heatmap.png").exists(), "the plot job (afterany) to write the heatmap", 120)
    again = run_cli("run", *grid, *SLURM, "-o", str(out), cwd=tmp_path, check=True)
    assert "2 finished runs skipped; 0 submitted" in again.stdout  # finished cells are never resubmitted


def test_a_failing_cell_does_not_affect_the_others_and_is_resubmitted(tmp_path):
    plugins = str(flaky_plugin(tmp_path / "plugins"))
    out = tmp_path / "results"
    args = ["run", "tasks=flaky", "task.mode=raise,ok", *SLURM, "-o", str(out)]
    run_cli(*args, cwd=tmp_path, env={"FRAMEWORK_PLUGIN_PATH": plugins}, check=True)
    _wait(lambda: _all_in(out, {"done", "failed"}, 2), "both cells to end")
    cells = _states(out, "task.mode")
    assert cells["ok"]["state"] == "done" and cells["raise"]["state"] == "failed"
    assert "boom from the flaky task" in cells["raise"]["note"]

    again = run_cli(*args, cwd=tmp_path, env={"FRAMEWORK_PLUGIN_PATH": plugins}, check=True)
    assert "1 finished runs skipped; 1 submitted" in again.stdout
    _wait(lambda: _states(out, "task.mode")["raise"]["state"] == "failed" and
          read_status(Path(cells["raise"]["run_dir"])).get("attempts") == 2, "the failed cell to run again")


def test_a_cancelled_cell_shows_failed_and_the_next_run_resubmits_it(tmp_path):
    plugins = str(flaky_plugin(tmp_path / "plugins"))
    out = tmp_path / "results"
    args = ["run", "tasks=flaky", "task.step_sleep=0.05", "task.max_epochs=12", *SLURM, "-o", str(out)]
    run_cli(*args, cwd=tmp_path, env={"FRAMEWORK_PLUGIN_PATH": plugins}, check=True)
    (record,) = cell_states(str(out))
    run_dir = Path(record["run_dir"])
    _wait(lambda: _fit_starts(run_dir), "training to start")
    subprocess.run(["scancel", record["job_id"]], check=True)
    _wait(lambda: _states(out)[run_dir.name] == "failed", "the cancelled cell to show as failed")
    # the job stops at the end of a step, saves it and says so (a job killed outright shows sacct's CANCELLED)
    _wait(lambda: "terminated by SIGTERM" in cell_states(str(out))[0]["note"], "the job to record its end", 40)
    _wait(lambda: "framework-flaky" not in subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True,
                                                          text=True).stdout, "the job to leave the queue", 25)

    again = run_cli(*args, cwd=tmp_path, env={"FRAMEWORK_PLUGIN_PATH": plugins}, check=True)
    assert "1 submitted" in again.stdout
    _wait(lambda: _states(out)[run_dir.name] == "done", "the resubmitted cell to finish")
    assert cell_states(str(out))[0]["job_id"] != record["job_id"]
    starts = _fit_starts(run_dir)
    assert len(starts) == 2 and starts[1] > 0  # resumed from the step it was stopped at
    assert read_scores(run_dir)["train"]["global_step"] == 12 * 16


def test_framework_cancel_stops_queued_and_running_cells(tmp_path):
    plugins = str(flaky_plugin(tmp_path / "plugins"))
    out = tmp_path / "results"
    run_cli("run", "tasks=flaky", "task.step_sleep=0.05", "task.max_epochs=20", "engine.seed=1,2,3", *SLURM,
            "engine.slurm.array_parallelism=1", "-o", str(out), cwd=tmp_path, env={"FRAMEWORK_PLUGIN_PATH": plugins},
            check=True)
    _wait(lambda: "running" in _states(out).values(), "one cell to run (the others wait: array_parallelism=1)")
    assert sorted(_states(out).values()) == ["pending", "pending", "running"]
    cancelled = run_cli("cancel", str(out), cwd=tmp_path, check=True)
    assert "cancelled 3 jobs" in cancelled.stdout
    _wait(lambda: _all_in(out, {"failed"}, 3), "every cell to show as failed")
    _wait(lambda: "framework-flaky" not in subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True,
                                                          text=True, check=True).stdout, "the jobs to leave the queue", 60)


def test_scontrol_requeue_resumes_from_where_it_stopped(tmp_path):
    out, run_dir, record = _submit_flaky(tmp_path, "task.step_sleep=0.1", "task.max_epochs=4")
    _wait(lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), "the first epoch's checkpoint")
    subprocess.run(["scontrol", "requeue", record["job_id"]], check=True)
    _wait(lambda: _states(out)[run_dir.name] == "done", "the requeued cell to finish")
    starts = _fit_starts(run_dir)
    # requeueing a running job sends it SIGTERM: it stops at the end of a step with a checkpoint there
    assert len(starts) == 2 and starts[0] == 0 and starts[1] >= 16, starts
    assert read_status(run_dir)["attempts"] == 2
    assert read_scores(run_dir)["train"]["global_step"] == 4 * 16


def test_preemption_saves_a_step_exact_checkpoint_and_requeues_through_submitit(tmp_path):
    import submitit

    out, run_dir, record = _submit_flaky(tmp_path, "task.step_sleep=0.1", "task.max_epochs=3")
    _wait(lambda: _fit_starts(run_dir), "training to start")
    time.sleep(2.5)  # mid-epoch: about 25 of the 48 steps
    job = submitit.SlurmJob(folder=Path(read_status_and_job(run_dir)["slurm_folder"]) / "%j", job_id=record["job_id"])
    job._interrupt()  # what a preempting scheduler sends: SIGTERM, then submitit's USR2
    _wait(lambda: len(_fit_starts(run_dir)) == 2, "the requeued job to resume training", 180)
    _wait(lambda: _states(out)[run_dir.name] == "done", "the requeued cell to finish")
    starts = _fit_starts(run_dir)
    assert starts[0] == 0 and starts[1] > 0, starts
    status = read_status(run_dir)
    assert status["requeues"] == 1 and status["attempts"] == 2
    assert read_scores(run_dir)["train"]["global_step"] == 3 * 16  # no step lost or repeated


def test_two_devices_train_with_ddp_over_two_slurm_tasks(tmp_path):
    out = tmp_path / "results"
    run_cli("run", "tasks=digits", "task.max_epochs=2", "engine.devices=2", "engine.accelerator=cpu", *SLURM,
            "-o", str(out), cwd=tmp_path, check=True)
    _wait(lambda: _all_in(out, {"done", "failed"}, 1), "the two-process cell to end")
    (record,) = cell_states(str(out))
    assert record["state"] == "done", record["note"]
    logs = list(Path(read_status_and_job(Path(record["run_dir"]))["slurm_folder"]).glob("*/*_1_log.err"))
    assert logs, "the second SLURM task (rank 1) left no log: the job did not run two processes"
    scores = read_scores(Path(record["run_dir"]))
    assert 0.5 < scores["best"]["test_acc"] <= 1.0


def test_the_plot_job_runs_on_the_grids_partition_with_its_own_request(tmp_path):
    """engine.sbatch_args.partition reaches the plot job (clusters that require one refuse a job without
    it), but its memory and CPUs are its own, and it asks for no GPU."""
    import re

    out = tmp_path / "results"
    submitted = run_cli("run", "tasks=digits", "task.max_epochs=1", *SLURM, "engine.sbatch_args.partition=debug",
                        "engine.sbatch_args.mem=3G", "engine.slurm.plot=true", "-o", str(out), cwd=tmp_path, check=True)
    plot_job = re.search(r"plot job (\d+)", submitted.stdout)[1]
    _wait(lambda: (out / "plots" / "digits_heatmap.png").exists(), "the plot job to write the heatmap")
    (script,) = (out / ".slurm").glob(f"*/{plot_job}/{plot_job}_submission.sh")
    assert "#SBATCH --partition=debug\n" in script.read_text()  # asked for, not the cluster's default

    def accounting() -> list[str] | None:  # once the job has ended (the heatmap is written before it exits)
        line = subprocess.run(["sacct", "-X", "-n", "-P", "-j", plot_job, "-o", "Partition,State,ReqTRES"],
                              capture_output=True, text=True, check=False).stdout.strip().split("\n")[0].split("|")
        return line if len(line) == 3 and line[1] not in ALIVE else None

    partition, state, requested = _wait(accounting, "the plot job to end", 60)
    assert (partition, state) == ("debug", "COMPLETED"), (partition, state)
    assert "mem=8G" in requested and "cpu=2" in requested and "gpu" not in requested, requested  # not the grid's 3G



def test_a_two_node_cell_reaches_slurm_as_two_nodes_of_its_devices(tmp_path):
    """The local cluster has one node (../shared/slurm/start-local-slurm.sh; its config is shared, so no second
    slurmd is added for this): a 2-node cell cannot start here. Its request reaches SLURM as submitted (2
    nodes, a task per device on each) and waits for nodes the partition lacks; `framework cancel` ends it.
    tests/test_slurm_config.py checks the script's lines and Lightning's ranks in such a job."""
    out = tmp_path / "results"
    run_cli("run", "tasks=flaky", "engine.nodes=2", "engine.devices=2", *SLURM, "-o", str(out), cwd=tmp_path,
            env={"FRAMEWORK_PLUGIN_PATH": str(flaky_plugin(tmp_path / "plugins"))}, check=True)
    (record,) = cell_states(str(out))
    job = read_status_and_job(Path(record["run_dir"]))["job_id"]
    shown = _wait(lambda: (lambda text: "NumNodes=2" in text and text)(
        subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout), "the job's record", 30)
    assert "NumTasks=4" in shown and "JobState=PENDING" in shown, shown
    assert "Reason=PartitionNodeLimit" in shown or "Reason=PartitionConfig" in shown, shown  # more nodes than it has
    assert record["state"] == "pending"
    assert "cancelled 1 job" in run_cli("cancel", str(out), cwd=tmp_path, check=True).stdout
    _wait(lambda: _all_in(out, {"failed"}, 1), "the cancelled cell to show as failed")
