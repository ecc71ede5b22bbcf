# python -m pytest tests/test_e2e.py   (slow: real Lightning fits through the CLI, about a minute)
"""End to end through the `framework` command: grids, skipping, failures, divergence, kill and resume, plot."""

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

from framework.results.run_folder import load_runs, read_scores, read_status

from .conftest import flaky_plugin, run_cli

pytestmark = pytest.mark.slow

GRID = ["tasks=digits", "optimizers=adamw_baseline,sgd_baseline", "optimizer.learning_rate=1e-3,1e-2",
        "optimizer.weight_decay=0,1e-2", "task.max_epochs=3"]


def test_grid_runs_then_skips_then_plots(tmp_path):
    out = tmp_path / "results"
    first = run_cli("run", *GRID, "-o", str(out), cwd=tmp_path, check=True)
    runs = load_runs(out)
    assert len(runs) == 8 and {r["state"] for r in runs} == {"done"}
    assert all(0.0 <= r["best/test_acc"] <= 1.0 for r in runs)
    assert all(r["best/val_acc"] >= r["last/val_acc"] for r in runs)  # best is chosen by val_acc
    assert "8 done, 0 skipped" in first.stdout
    stamps = {r["run_dir"]: Path(r["run_dir"], "scores.json").stat().st_mtime_ns for r in runs}

    second = run_cli("run", *GRID, "-o", str(out), cwd=tmp_path, check=True)
    assert "0 done, 8 skipped" in second.stdout
    assert stamps == {r["run_dir"]: Path(r["run_dir"], "scores.json").stat().st_mtime_ns for r in load_runs(out)}

    plotted = run_cli("plot", str(out), cwd=tmp_path, check=True)
    for suffix in ("png", "pdf", "csv"):
        assert (out / "plots" / f"digits_heatmap.{suffix}").stat().st_size > 0, plotted.stdout


def test_failed_and_diverged_runs_are_recorded_and_the_grid_goes_on(tmp_path):
    plugins = flaky_plugin(tmp_path / "plugins")
    out = tmp_path / "results"
    proc = run_cli("run", "tasks=flaky", "task.mode=raise,nan,ok", "-o", str(out), cwd=tmp_path,
                   env={"FRAMEWORK_PLUGIN_PATH": str(plugins)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    states = {r["task.mode"]: r for r in load_runs(out)}
    assert states["ok"]["state"] == "done"
    assert states["nan"]["state"] == "diverged" and "step 3" in states["nan"]["error"]
    assert states["raise"]["state"] == "failed" and "boom from the flaky task" in states["raise"]["error"]
    status = read_status(Path(states["raise"]["run_dir"]))
    assert "RuntimeError" in status["traceback"]
    assert "1 done, 0 skipped, 1 diverged, 1 failed" in proc.stdout

    again = run_cli("run", "tasks=flaky", "task.mode=raise,nan,ok", "-o", str(out), cwd=tmp_path,
                    env={"FRAMEWORK_PLUGIN_PATH": str(plugins)})
    assert "0 done, 2 skipped, 0 diverged, 1 failed" in again.stdout  # only the failed run is retried


def _scores_without_timing(run_dir: Path) -> dict:
    scores = read_scores(run_dir)
    scores.pop("train")
    return scores


def test_killed_run_resumes_to_the_same_scores(tmp_path):
    args = ["run", "tasks=digits", "task.max_epochs=25", "task.dropout=0.2"]
    reference = tmp_path / "reference"
    run_cli(*args, "-o", str(reference), cwd=tmp_path, check=True)
    (ref_dir,) = [Path(r["run_dir"]) for r in load_runs(reference)]

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "framework", *args, "-o", str(killed)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = killed / "digits" / "adamw_baseline" / ref_dir.name
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_status(run_dir)["state"] == "running"  # killed mid-training: nothing recorded as finished
    assert read_scores(run_dir) is None
    shown = run_cli("status", str(killed), cwd=tmp_path, check=True).stdout  # its worker died with it
    assert "failed" in shown and "interrupted" in shown, shown

    resumed = run_cli(*args, "-o", str(killed), cwd=tmp_path, check=True)
    assert "1 done" in resumed.stdout
    assert read_status(run_dir)["attempts"] == 2
    assert json.dumps(_scores_without_timing(run_dir), sort_keys=True) == json.dumps(
        _scores_without_timing(ref_dir), sort_keys=True
    )
    # The learning curve is continued, not restarted: every epoch's validation row is there once.
    epochs = [row["epoch"] for row in _csv_rows(run_dir) if row.get("val_acc") and not row.get("test_acc")]
    assert epochs == [row["epoch"] for row in _csv_rows(ref_dir) if row.get("val_acc") and not row.get("test_acc")]


def _csv_rows(run_dir: Path) -> list[dict]:
    with (run_dir / "logs" / "metrics.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))
