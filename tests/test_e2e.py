# python -m pytest tests/test_e2e.py   (slow: real Lightning fits through the CLI, about a minute)
"""End to end through the `framework` command: grids, skipping, failures, divergence, kill and resume, plot."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.results.run_folder import iter_run_dirs, load_runs, read_scores, read_status, write_status

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
    plots = out / "plots"
    with open(plots / "digits_heatmap.csv", newline="") as handle:
        cells = list(csv.DictReader(handle))
    # one cell per optimizer x lr x wd, holding its one run's score (one seed: no std)
    scores = {(r["optimizer"], r["optimizer.learning_rate"], r["optimizer.weight_decay"]): r for r in runs}
    assert len(cells) == 8 and {c["metric"] for c in cells} == {"best/test_acc"}
    for cell in cells:
        run = scores[(cell["optimizer"], float(cell["x"]), float(cell["y"]))]
        assert float(cell["mean"]) == pytest.approx(run[cell["metric"]], abs=1e-12)
        assert (cell["n_done"], cell["n_runs"], cell["std"]) == ("1", "1", "")
    for optimizer in {c["optimizer"] for c in cells}:  # the box: the cell with the best validation score
        own = [c for c in cells if c["optimizer"] == optimizer]
        (boxed,) = [c for c in own if c["box"] == "True"]
        assert float(boxed["select_mean"]) == max(float(c["select_mean"]) for c in own)
        assert boxed["select_mean"] == repr(scores[(optimizer, float(boxed["x"]), float(boxed["y"]))]["best/val_acc"])
    from matplotlib.image import imread

    assert imread(plots / "digits_heatmap.png").shape[2] in (3, 4), plotted.stdout
    assert (plots / "digits_heatmap.pdf").read_bytes()[:5] == b"%PDF-"


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


# The user's grid: two cells in one worker, dropout so that the RNG matters, 40 epochs so that training
# goes on long after the last improvement of val_acc (which is when "best" and "last" can part).
KILLED_GRID = ["run", "tasks=digits", "optimizers=adamw_baseline,lion", "task.max_epochs=40", "task.dropout=0.2",
               "optimizer.learning_rate=3e-3"]
TIMING = ("time_s", "step_time_ms", "samples_per_s", "optimizer_step_ms", "optimizer_time_fraction")


def _untimed_scores(run_dir: Path) -> dict:
    """scores.json less the timings, which no two runs share; everything else must match exactly."""
    scores = read_scores(run_dir)
    scores["train"] = {k: v for k, v in scores["train"].items() if k not in TIMING}
    return scores


def _run_then_kill(out: Path, cwd: Path, delay: float | None) -> tuple[bool, float]:
    """Start the grid in a new output folder; `delay` s after it writes its first checkpoint, SIGKILL its
    whole process group (None: let it finish). Returns (whether the kill stopped it, seconds from that
    checkpoint to the end)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "framework", *KILLED_GRID, "-o", str(out)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not any(out.glob("*/*/*/checkpoints/last.ckpt")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.005)
        checkpointed = time.monotonic()
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    finally:  # the kill, or the cleanup of a test that stopped early (a new session outlives pytest)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the main process, its worker and anything they started
    code = proc.wait()
    assert code in (0, -signal.SIGKILL), f"framework run exited with {code}"
    return code == -signal.SIGKILL, time.monotonic() - checkpointed


def _kill_then_resume(out: Path, cwd: Path, delay: float) -> bool:
    """Run the grid into `out`, kill it `delay` s after its first checkpoint, run it again to the end.
    Whether the kill cut it."""
    if not _run_then_kill(out, cwd, delay)[0]:
        return False  # it finished first (the machine was faster than for the reference)
    cut = [d for d in iter_run_dirs(out) if (read_status(d) or {}).get("state") == "running"]
    if cut:  # recorded as running by a process that is gone: its worker died with it
        shown = run_cli("status", str(out), cwd=cwd, check=True).stdout
        assert "interrupted" in shown and "running" not in shown.splitlines()[-1], shown
    run_cli(*KILLED_GRID, "-o", str(out), cwd=cwd, check=True)
    assert all(read_status(d)["attempts"] == 2 for d in cut)
    return True


def _assert_same_runs(ours: Path, theirs: Path) -> None:
    """Every cell under `ours` finished with the untimed scores, learning curve and checkpoints of its
    namesake under `theirs`."""
    runs = sorted(d.relative_to(theirs) for d in iter_run_dirs(theirs))
    assert len(runs) == 2 and runs == sorted(d.relative_to(ours) for d in iter_run_dirs(ours))
    for run in runs:
        assert read_status(ours / run)["state"] == "done"
        assert json.dumps(_untimed_scores(ours / run), sort_keys=True) == json.dumps(
            _untimed_scores(theirs / run), sort_keys=True), run
        # The learning curve is continued, not restarted: every row is there once, with the same values.
        assert _csv_rows(ours / run) == _csv_rows(theirs / run), run
        # The same checkpoints, and nothing left of an attempt's half-written or superseded ones
        assert sorted(p.name for p in (ours / run / "checkpoints").iterdir()) == sorted(
            p.name for p in (theirs / run / "checkpoints").iterdir()), run


def test_killed_run_resumes_to_the_same_scores(tmp_path):
    """Killed (SIGKILL to its process group) at moments drawn between its first checkpoint and its end,
    which fall anywhere (mid-epoch, in a checkpoint's write, while checkpoints are tested, in either
    cell): each time, the command run again ends with what a run that never stopped recorded."""
    reference = tmp_path / "reference"
    _, span = _run_then_kill(reference, tmp_path, None)
    draw = random.Random(1)
    delays = sorted(draw.uniform(0.0, span) for _ in range(3))
    cut = 0
    for i, delay in enumerate(delays):
        killed = tmp_path / f"killed-{i}"
        cut += _kill_then_resume(killed, tmp_path, delay)
        _assert_same_runs(killed, reference)
    assert cut, f"no kill ({', '.join(f'{d:.2f}' for d in delays)} s) came before the end ({span:.2f} s)"


def test_run_killed_while_its_checkpoints_are_tested_resumes_to_the_same_results(tmp_path):
    """The state a kill leaves after training, while the checkpoints are validated and tested (a window
    the random kills above may miss): their rows in metrics.csv, no scores.json, status `running`."""
    args = ["run", "tasks=digits", "task.max_epochs=3", "task.dropout=0.2", "-o", str(tmp_path / "out")]
    run_cli(*args, cwd=tmp_path, check=True)
    (run_dir,) = iter_run_dirs(tmp_path / "out")
    scores, rows = _untimed_scores(run_dir), _csv_rows(run_dir)
    (run_dir / "scores.json").unlink()
    write_status(run_dir, "running")
    run_cli(*args, cwd=tmp_path, check=True)
    assert read_status(run_dir)["attempts"] == 2
    assert _untimed_scores(run_dir) == scores
    assert _csv_rows(run_dir) == rows  # the first attempt's test rows are not kept beside the new ones


def _csv_rows(run_dir: Path) -> list[dict]:
    with (run_dir / "logs" / "metrics.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))
