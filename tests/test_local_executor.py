# python -m pytest tests/test_local_executor.py
"""The local executor: cells in worker processes, isolated from each other's crashes; device split."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.executors.local import worker_environments
from framework.results.run_folder import load_runs, read_metrics, read_scores

from .conftest import flaky_plugin, run_cli

GRID = ["tasks=digits", "optimizers=adamw_baseline", "optimizer.learning_rate=1e-3,1e-2", "engine.seed=1,2",
        "task.max_epochs=2"]


def _scores(run_dir: str) -> dict:
    scores = read_scores(Path(run_dir))
    scores.pop("train")  # timings differ
    return {f"{which}/{k}": v for which, values in scores.items() for k, v in values.items()}


@pytest.mark.slow
def test_two_workers_give_the_scores_of_one_process(tmp_path):
    run_cli("run", *GRID, "engine.workers=0", "-o", str(tmp_path / "inline"), cwd=tmp_path, check=True)
    parallel = run_cli("run", *GRID, "engine.workers=2", "-o", str(tmp_path / "parallel"), cwd=tmp_path, check=True)
    assert "(2 workers)" in parallel.stdout and "4 done, 0 failed, 0 running, 0 left" in parallel.stdout
    inline = {r["run_id"]: _scores(r["run_dir"]) for r in load_runs(tmp_path / "inline")}
    workers = {r["run_id"]: _scores(r["run_dir"]) for r in load_runs(tmp_path / "parallel")}
    assert len(inline) == 4 and inline.keys() == workers.keys()
    for run_id, scores in inline.items():
        # same runs; a worker uses fewer CPU threads, which may change a sum's last bit
        assert workers[run_id] == pytest.approx(scores, rel=1e-5), run_id


@pytest.mark.slow
def test_a_crashing_cell_is_recorded_and_the_others_go_on(tmp_path):
    plugins = flaky_plugin(tmp_path / "plugins")
    out = tmp_path / "results"
    proc = run_cli("run", "tasks=flaky", "task.mode=segfault,raise,ok,nan", "engine.workers=2", "-o", str(out),
                   cwd=tmp_path, env={"FRAMEWORK_PLUGIN_PATH": str(plugins)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    states = {r["task.mode"]: r for r in load_runs(out)}
    assert states["segfault"]["state"] == "failed" and "SIGSEGV" in states["segfault"]["error"]
    assert states["raise"]["state"] == "failed" and "boom from the flaky task" in states["raise"]["error"]
    assert states["ok"]["state"] == "done" and states["nan"]["state"] == "diverged"


def test_each_worker_gets_its_own_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7,9")
    assert worker_environments(4, 1) == [{"CUDA_VISIBLE_DEVICES": g} for g in ("3", "5", "7", "9")]
    assert worker_environments(2, 2) == [{"CUDA_VISIBLE_DEVICES": "3,5"}, {"CUDA_VISIBLE_DEVICES": "7,9"}]
    with pytest.raises(FrameworkError, match="needs 6 GPUs, 4 visible"):
        worker_environments(3, 2)


def test_without_gpus_the_cpu_threads_are_split(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    environments = worker_environments(2, 1)
    assert len(environments) == 2
    threads = int(environments[0]["OMP_NUM_THREADS"])
    assert threads >= 1 and threads * 2 <= max(2, __import__("os").cpu_count())
    assert all(env["CUDA_VISIBLE_DEVICES"] == "" for env in environments)


def test_the_thread_split_respects_omp_num_threads(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert worker_environments(1, 1)[0]["OMP_NUM_THREADS"] == "1"  # not every core
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert [env["OMP_NUM_THREADS"] for env in worker_environments(2, 1)] == ["4", "4"]


def test_prepare_runs_each_task_configuration_once(tmp_path):
    plugins = flaky_plugin(tmp_path / "plugins")
    log = tmp_path / "prepared.txt"
    proc = run_cli("prepare", "tasks=flaky", "optimizer.learning_rate=1e-3,1e-2", "task.noise=0.5,1.0", cwd=tmp_path,
                   env={"FRAMEWORK_PLUGIN_PATH": str(plugins), "FLAKY_PREPARE_LOG": str(log)}, check=True)
    assert sorted(log.read_text().split()) == ["0.5", "1.0"]  # not once per learning rate
    assert proc.stdout.count("flaky: prepared") == 2
    assert not (tmp_path / "results").exists()  # preparing trains and records nothing


@pytest.mark.slow
def test_two_devices_train_with_ddp_spawn_in_a_worker(tmp_path):
    out = tmp_path / "results"
    # each fit, validate and test starts two processes: test the last checkpoint only
    proc = run_cli("run", "tasks=digits", "task.max_epochs=2", "engine.devices=2", "engine.accelerator=cpu",
                   "engine.test_checkpoints=[last]", "-o", str(out), cwd=tmp_path)
    (run,) = load_runs(out)
    assert run["state"] == "done", proc.stdout + proc.stderr
    assert 0.3 < run["last/test_acc"] <= 1.0  # two gloo processes trained it, starting from chance (0.1)
    # the learning curve survives the processes that fit, validate and test in turn (each one unpickles
    # the CSV logger again; a writer that started a fresh file each time kept only the test rows)
    rows = read_metrics(Path(run["run_dir"]))
    assert {"train_loss", "val_acc"} <= {key for row in rows for key in row}, rows
    assert max(row["step"] for row in rows if "train_loss" in row) > 0


def test_idle_workers_stop_together_and_exit_cleanly():
    """Workers skip the interpreter's teardown (os._exit after flushing): a stopped worker exits with 0."""
    import multiprocessing
    from multiprocessing.connection import wait

    from framework.executors.local import _Worker

    context = multiprocessing.get_context("spawn")
    pool = [_Worker(context, {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}) for _ in range(2)]
    for worker in pool:
        assert wait([worker.connection], timeout=120) and worker.connection.recv() is None  # ready
    for worker in pool:
        worker.ask_to_stop()
    for worker in pool:
        worker.stop()
    assert [worker.process.exitcode for worker in pool] == [0, 0]
