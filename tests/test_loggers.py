# python -m pytest tests/test_loggers.py   (the fits are slow: -m "not slow" keeps the configuration checks)
"""engine.loggers: TensorBoard and MLflow beside metrics.csv, read back with their own readers (TensorBoard's
EventAccumulator, MLflow's client on the file store): the training curve, the validation metric, the
configuration as hyperparameters and the final scores; a killed run that is run again continues its logger
runs; unknown names and missing packages are configuration errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.config import parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.results.run_folder import iter_run_dirs, read_scores, read_status

from .cells import run_cell
from .conftest import flaky_plugin, run_cli

LOGGED = ("tasks=digits", "task.max_steps=24", "task.max_epochs=null", "engine.log_every_n_steps=5",
          "optimizer.learning_rate=0.003", "engine.loggers=[csv,tensorboard,mlflow]")


# ---------------------------------------------------------------- configuration, checked before anything runs

def test_an_unknown_logger_is_a_one_line_config_error_naming_the_choices(tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", "tasks=digits", "engine.loggers=[csv,tensorbord]", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "engine.loggers: unknown logger 'tensorbord' (did you mean tensorboard?); choose from csv, tensorboard, " \
           "mlflow, wandb" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.parametrize(("logger", "hint"), [("tensorboard", "pip install tensorboard"),
                                               ("mlflow", 'pip install "framework[mlflow]"'),
                                               ("wandb", 'pip install "framework[wandb]"')])
def test_a_logger_whose_package_is_missing_fails_the_dry_run_with_the_install_hint(tmp_path, logger, hint):
    # None in sys.modules is Python's mark of a module that cannot be imported: `import mlflow` raises
    # ImportError, as where the package was never installed.
    out = tmp_path / "out"
    code = (f"import sys; sys.modules[{logger!r}] = None; from framework.cli import main; "
            f"sys.exit(main(['run', 'tasks=digits', 'engine.loggers=[{logger}]', '-o', {str(out)!r}, '--dry-run']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"engine.loggers: {logger} needs the {logger} package, which is not installed: {hint}" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_bad_logger_options_are_config_errors(tmp_path):
    result = run_cli("run", "tasks=digits", "engine.wandb.mode=on", "engine.mlflow.tracking_uri=''", "--dry-run",
                     cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "engine.wandb.mode: must be one of offline, online, got 'on'" in result.stderr
    assert "engine.mlflow.tracking_uri: must be a non-empty string or null, got ''" in result.stderr


def test_the_loggers_are_not_part_of_a_runs_identity():
    registry = Registry([])
    plain = expand(parse_overrides(["tasks=digits"]), registry)
    logged = expand(parse_overrides(["tasks=digits", "engine.loggers=[tensorboard,mlflow]", "engine.wandb.mode=online",
                                     "engine.mlflow.experiment=mine"]), registry)
    assert [r.run_id for r in plain] == [r.run_id for r in logged]


# ---------------------------------------------------------------- real fits, read back

def _csv_series(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    with (run_dir / "logs" / "metrics.csv").open(newline="") as fh:
        return [(int(row["step"]), float(row[metric])) for row in csv.DictReader(fh) if row.get(metric)]


def _tensorboard(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def _tensorboard_hparams(events) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    values = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    return {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for key, value in values.items()}


def _mlflow_runs(output: Path, experiment: str = "digits") -> tuple:
    """MLflow's client on the run's file store, and the runs of `experiment`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient((output / "mlruns").resolve().as_uri())
    return client, client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


@pytest.mark.slow
def test_tensorboard_and_mlflow_receive_the_curves_the_hyperparameters_and_the_final_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads its file store only when told to
    output = tmp_path / "results"
    spec, outcome, run_dir = run_cell(output, *LOGGED)
    assert outcome.state == "done", outcome.error
    scores, train_loss, val_acc = read_scores(run_dir), _csv_series(run_dir, "train_loss"), _csv_series(run_dir, "val_acc")
    assert len(train_loss) >= 4 and val_acc  # a curve, and a validation

    events = _tensorboard(run_dir)
    logged = [(e.step, e.value) for e in events.Scalars("train_loss")]
    assert [s for s, _ in logged] == [s for s, _ in train_loss]
    assert [v for _, v in logged] == pytest.approx([v for _, v in train_loss], rel=1e-6)
    assert [e.step for e in events.Scalars("val_acc")][:len(val_acc)] == [s for s, _ in val_acc]
    assert events.Scalars("best/test_acc")[-1].value == pytest.approx(scores["best"]["test_acc"], rel=1e-6)
    assert events.Scalars("best/test_acc")[-1].step == scores["train"]["global_step"] == 24
    hparams = _tensorboard_hparams(events)
    assert hparams["optimizer.learning_rate"] == pytest.approx(0.003)
    assert hparams["task.name"] == "digits" and hparams["schedule.decay_milestones"] == "[0.9, 0.95]"

    client, (run,) = _mlflow_runs(output)
    assert run.info.status == "FINISHED" and run.info.run_name == f"adamw_baseline/{spec.run_id}"
    assert run.data.tags["run_id"] == spec.run_id
    assert json.loads((run_dir / "loggers.json").read_text())["mlflow"]["run_id"] == run.info.run_id
    assert run.data.params["optimizer.learning_rate"] == "0.003" and run.data.params["engine.loggers"] == \
        '["csv", "tensorboard", "mlflow"]'
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == [s for s, _ in train_loss]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_acc"))[:len(val_acc)] == \
        [s for s, _ in val_acc]
    assert run.data.metrics["best/test_acc"] == pytest.approx(scores["best"]["test_acc"], rel=1e-12)
    assert run.data.metrics["last/val_acc"] == pytest.approx(scores["last"]["val_acc"], rel=1e-12)


KILLED = ["run", "tasks=flaky", "task.max_epochs=3", "task.step_sleep=0.05", "engine.log_every_n_steps=4",
          "engine.loggers=[tensorboard,mlflow]"]


def _start_then_kill(output: Path, cwd: Path, env: dict) -> None:
    """Start the run, SIGKILL its process group 0.3 s after its first checkpoint, while it trains the next epoch."""
    proc = subprocess.Popen([sys.executable, "-m", "framework", *KILLED, "-o", str(output)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not any(output.glob("*/*/*/checkpoints/last.ckpt")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended or wrote no checkpoint"
            time.sleep(0.01)
        time.sleep(0.3)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before the kill: raise task.step_sleep"


@pytest.mark.slow
def test_a_killed_run_run_again_continues_its_tensorboard_and_mlflow_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FRAMEWORK_PLUGIN_PATH": str(flaky_plugin(tmp_path / "plugins"))}
    output = tmp_path / "results"
    _start_then_kill(output, tmp_path, env)
    (run_dir,) = iter_run_dirs(output)
    first = json.loads((run_dir / "loggers.json").read_text())["mlflow"]["run_id"]
    rerun = subprocess.run([sys.executable, "-m", "framework", *KILLED, "-o", str(output)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert read_status(run_dir)["attempts"] == 2 and read_status(run_dir)["state"] == "done"
    train_loss = _csv_series(run_dir, "train_loss")  # the whole curve, each step once (tests/test_e2e.py)

    client, (run,) = _mlflow_runs(output, "flaky")  # one MLflow run, not one per attempt
    assert run.info.run_id == first and run.info.status == "FINISHED"
    # MLflow keeps every value it was sent: the steps the killed attempt logged after its checkpoint twice
    assert sorted({m.step for m in client.get_metric_history(first, "train_loss")}) == [s for s, _ in train_loss]
    assert run.data.metrics["best/test_loss"] == pytest.approx(read_scores(run_dir)["best"]["test_loss"], rel=1e-12)
    # TensorBoard hides what the killed attempt logged after its checkpoint: the curve is metrics.csv's
    logged = _tensorboard(run_dir).Scalars("train_loss")
    assert [e.step for e in logged] == [s for s, _ in train_loss]
    assert [e.value for e in logged] == pytest.approx([v for _, v in train_loss], rel=1e-6)


@pytest.mark.slow
def test_wandb_writes_an_offline_run_in_the_run_folder_and_a_resume_keeps_its_id(tmp_path):
    import wandb  # noqa: F401  (in the test extra, so CI runs this test; a missing package fails it)

    output = tmp_path / "results"
    args = ("tasks=digits", "task.max_steps=24", "task.max_epochs=null", "engine.loggers=[wandb]")
    _, outcome, run_dir = run_cell(output, *args)
    assert outcome.state == "done", outcome.error
    wandb_id = json.loads((run_dir / "loggers.json").read_text())["wandb"]["id"]
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    assert offline.name.endswith(f"-{wandb_id}") and any(offline.glob("*.wandb"))
    # A resumed attempt (no scores.json, a checkpoint, status running) writes to the same wandb run id
    (run_dir / "scores.json").unlink()
    (run_dir / "status.json").write_text(json.dumps({"state": "running", "attempts": 1}))
    _, outcome, _ = run_cell(output, *args)
    assert outcome.state == "done", outcome.error
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{wandb_id}") for r in runs)


@pytest.mark.slow
def test_an_attempt_that_starts_over_hides_the_earlier_attempts_tensorboard_events(tmp_path):
    """A run retried without a checkpoint to resume from trains from step 0 again (metrics.csv restarts):
    TensorBoard shows only the new attempt, final scores included, not two values at the last step.

    TensorBoard orders event files by name: creation second, pid, then a counter compared as text. In CI
    both attempts once fell within one second and "…10" sorted before "…9": the earlier attempt's files
    are renamed here into the coming second, so the new attempt starts in the same second as they do."""
    output = tmp_path / "results"
    args = ("tasks=digits", "task.max_steps=24", "task.max_epochs=null", "engine.loggers=[tensorboard]")
    _, outcome, run_dir = run_cell(output, *args)
    assert outcome.state == "done", outcome.error
    for path in [*(run_dir / "checkpoints").iterdir(), run_dir / "scores.json"]:
        path.unlink()
    (run_dir / "status.json").write_text(json.dumps({"state": "failed", "attempts": 1}))
    coming = int(time.time()) + 1
    for path in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        parts = path.name.split(".")
        path.rename(path.with_name(".".join([*parts[:3], str(coming), *parts[4:-1], f"9{parts[-1]}"])))
    _, outcome, _ = run_cell(output, *args)
    assert outcome.state == "done", outcome.error
    events = _tensorboard(run_dir)
    assert [e.step for e in events.Scalars("best/test_acc")] == [24]
    assert [e.step for e in events.Scalars("train_loss")] == [s for s, _ in _csv_series(run_dir, "train_loss")]


@pytest.mark.slow
def test_a_two_process_slurm_run_logs_from_rank_zero_only(tmp_path, monkeypatch):
    """DDP over two SLURM tasks (the local cluster): one MLflow run holding each step once, and TensorBoard
    events from one process, while both processes train."""
    from framework.commands.status import cell_states
    from framework.results.run_folder import read_status_and_job

    from .conftest import require_service
    from .test_slurm import SLURM, _all_in, _cluster_up, _wait

    require_service("SLURM cluster", _cluster_up(), "../shared/slurm/start-local-slurm.sh starts one (.ci/run does)")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    output = tmp_path / "results"
    run_cli("run", "tasks=digits", "task.max_epochs=2", "engine.devices=2", "engine.accelerator=cpu", *SLURM,
            "engine.loggers=[tensorboard,mlflow]", "-o", str(output), cwd=tmp_path, check=True)
    _wait(lambda: _all_in(output, {"done", "failed"}, 1), "the two-process cell to end")
    (record,) = cell_states(str(output))
    assert record["state"] == "done", record["note"]
    run_dir = Path(record["run_dir"])
    assert list(Path(read_status_and_job(run_dir)["slurm_folder"]).glob("*/*_1_log.err")), "rank 1 did not run"
    client, (run,) = _mlflow_runs(output)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert run.info.status == "FINISHED" and steps == [s for s, _ in _csv_series(run_dir, "train_loss")] == [19, 39]
    writers = {path.name.split(".")[-2] for path in (run_dir / "tensorboard").glob("events.out.tfevents.*")}
    assert len(writers) == 1, writers  # events.out.tfevents.<time>.<host>.<pid>.<n>: one process wrote them all


@pytest.mark.slow
def test_a_failed_run_leaves_its_mlflow_run_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    plugins = flaky_plugin(tmp_path / "plugins")
    output = tmp_path / "results"
    _, outcome, _ = run_cell(output, "tasks=flaky", "task.mode=raise", "engine.loggers=[mlflow]",
                             plugin_paths=(str(plugins),))
    assert outcome.state == "failed" and "boom from the flaky task" in outcome.error
    _, (run,) = _mlflow_runs(output, "flaky")
    assert run.info.status == "FAILED"
