# python -m pytest tests/test_locks.py   (the two-process test through the CLI is slow)
"""The lock per run directory: taken and released, never waited on, taken over when its holder is gone
(a dead process on this host, a requeued SLURM job, a holder elsewhere whose heartbeat stopped), and two
`framework run` on one output train each cell once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from framework.results.run_folder import load_runs, read_status

from framework.training.run_lock import LOCK_FILE, RunLock, read_holder

from .conftest import REPO, flaky_plugin


def _write_lock(run_dir: Path, age_s: float = 0.0, **info) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "token": "theirs", **info}))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_acquire_release_and_a_second_holder_is_refused_at_once(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.acquire() is None
    start = time.monotonic()
    holder = second.acquire()
    assert time.monotonic() - start < 1.0  # no waiting
    assert holder is not None and holder.info["pid"] == os.getpid()
    assert f"pid {os.getpid()} on {socket.gethostname()}" in holder.describe()
    first.release()
    assert not (tmp_path / LOCK_FILE).exists() and read_holder(tmp_path) is None
    with RunLock(tmp_path) as holder:
        assert holder is None and read_holder(tmp_path) is not None


def test_lock_of_a_killed_process_on_this_host_is_taken_over(tmp_path):
    code = ("import sys, time; from pathlib import Path; from framework.training.run_lock import RunLock; "
            "assert RunLock(Path(sys.argv[1])).acquire() is None; print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    assert RunLock(tmp_path).acquire() is not None  # alive: refused
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_holder(tmp_path).info["pid"] == proc.pid  # the kill left the lock behind
    lock = RunLock(tmp_path)
    assert lock.acquire() is None  # taken over at once, not after a timeout
    assert read_holder(tmp_path).info["pid"] == os.getpid()
    lock.release()


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    # a live pid (our parent's), but a process start time that is not its own: the pid now belongs to another process
    _write_lock(tmp_path, pid=os.getppid(), process_start="1")
    assert RunLock(tmp_path).acquire() is None


def test_holder_on_another_node_is_trusted_until_its_heartbeat_stops(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    _write_lock(tmp_path, age_s=20, host="gpu-node-17", pid=4242, slurm_job="991")
    holder = RunLock(tmp_path).acquire()
    assert holder is not None and "pid 4242 on gpu-node-17, SLURM job 991" in holder.describe()
    _write_lock(tmp_path, age_s=20, host="gpu-node-17", pid=4242)
    assert RunLock(tmp_path, stale_after_s=10).acquire() is None  # 20 s without a heartbeat: gone


def test_a_requeued_slurm_job_takes_over_its_own_lock(tmp_path, monkeypatch):
    _write_lock(tmp_path, host="gpu-node-17", pid=4242, slurm_job="991")
    monkeypatch.setenv("SLURM_JOB_ID", "992")
    assert RunLock(tmp_path).acquire() is not None  # another job: still held
    monkeypatch.setenv("SLURM_JOB_ID", "991")
    assert RunLock(tmp_path).acquire() is None  # the same job, restarted: SLURM never runs it twice at once


def test_heartbeat_keeps_the_lock_fresh_and_release_leaves_a_taken_over_lock(tmp_path):
    lock = RunLock(tmp_path, heartbeat_s=0.05)
    assert lock.acquire() is None
    path = tmp_path / LOCK_FILE
    os.utime(path, (time.time() - 1000, time.time() - 1000))
    time.sleep(0.3)
    assert time.time() - path.stat().st_mtime < 1.0
    _write_lock(tmp_path, host="elsewhere", pid=1)  # someone else's now
    time.sleep(0.2)
    lock.release()
    assert lock.lost and read_holder(tmp_path).info["host"] == "elsewhere"  # not ours to delete


def test_execute_reports_a_locked_cell_without_touching_it(tmp_path):
    from framework.config import parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry
    from framework.training.run import execute

    (spec,) = expand(parse_overrides(["tasks=digits", f"engine.output_dir={tmp_path}"]), Registry())
    run_dir = spec.run_dir(tmp_path)
    _write_lock(run_dir, host="gpu-node-3", pid=77, slurm_job="5")
    outcome = execute(spec, Registry())
    assert outcome.state == "locked" and outcome.error.startswith("locked by pid 77 on gpu-node-3, SLURM job 5")
    assert read_status(run_dir) is None  # nothing recorded, nothing trained


THIEF = """
import json, sys, time
from pathlib import Path
from framework.results import run_folder
from framework.training.run_lock import RunLock
run_dir = Path(sys.argv[1])
while not (run_dir / "checkpoints" / "last.ckpt").exists():  # the first epoch is done: training is under way
    time.sleep(0.01)
lock = RunLock(run_dir, stale_after_s=0.0)  # judges the holder's lock stale at once: the real takeover path
while lock.acquire() is not None:
    time.sleep(0.01)
status = run_folder.write_status(run_dir, "running", attempts=2, note="the new holder's")
print(json.dumps(status), flush=True)
sys.stdin.read()  # hold the lock until the test is done
"""


@pytest.mark.slow
def test_a_run_that_loses_its_lock_stops_at_a_step_with_a_checkpoint_and_leaves_the_new_holders_files(tmp_path, monkeypatch):
    """Another process takes the lock over mid-training (as it does a stale one): the run stops at the next
    step, saves last.ckpt there, reports itself interrupted and writes neither status.json nor scores.json."""
    import torch

    from framework.config import parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry
    from framework.training import run_lock
    from framework.training.run import execute

    monkeypatch.setattr(run_lock, "HEARTBEAT_S", 0.05)  # notice the loss within a step or two, not 30 s
    (spec,) = expand(parse_overrides(["tasks=digits", "task.max_epochs=30", f"engine.output_dir={tmp_path}"]), Registry())
    run_dir = spec.run_dir(tmp_path)
    thief = subprocess.Popen([sys.executable, "-c", THIEF, str(run_dir)], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        outcome = execute(spec, Registry())
        assert thief.poll() is None, "the thief ended before the run did"
        theirs = json.loads(thief.stdout.readline())
    finally:
        thief.kill()
        thief.wait()
    assert outcome.state == "interrupted", (outcome.state, outcome.error)
    assert f"pid {thief.pid} on {socket.gethostname()}" in outcome.error
    assert read_status(run_dir) == theirs  # the new holder's status, untouched
    assert not (run_dir / "scores.json").exists()
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    steps_per_epoch = 20  # 1,257 training images in batches of 64
    assert steps_per_epoch <= saved["global_step"] < 30 * steps_per_epoch  # stopped early, after the first epoch
    epoch, batches = saved["callbacks"]["PreemptionCheckpoint"]["resume_point"]  # step-exact: resumable there
    assert epoch * steps_per_epoch + batches == saved["global_step"]


@pytest.mark.slow
def test_two_commands_on_one_output_train_each_cell_once(tmp_path):
    """A second `framework run` started while the first trains its cell reports it locked and leaves it."""
    plugins = flaky_plugin(tmp_path / "plugins")
    out = tmp_path / "results"
    # slow steps (0.2 s each, a minute in all): the first command is surely still training when the second looks
    args = [sys.executable, "-m", "framework", "run", "tasks=flaky", "task.step_sleep=0.2", "task.max_epochs=20", "-o", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FRAMEWORK_PLUGIN_PATH": str(plugins)}
    first = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("*/*/*/fit_starts.txt")):  # training has started, under the lock
            assert first.poll() is None and time.monotonic() < deadline, "the first command ended before it was seen training"
            time.sleep(0.05)
        second = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert first.poll() is None, "the first command finished before the second could meet its lock"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 locked: being trained by another process" in second.stdout
    assert "locked by pid" in second.stdout and "since" in second.stdout
    (run,) = load_runs(out)
    run_dir = Path(run["run_dir"])
    assert read_status(run_dir)["attempts"] == 1  # the second command neither recorded an attempt...
    assert (run_dir / "fit_starts.txt").read_text().splitlines() == ["0"]  # ...nor started a fit


RACER = """
import sys, time
from pathlib import Path
from framework.training.run_lock import RunLock
import os
run_dir, go = Path(sys.argv[1]), Path(sys.argv[2])
(go.parent / f"ready.{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.001)
lock = RunLock(run_dir)
won = lock.acquire() is None
print("won" if won else "lost", flush=True)
time.sleep(2.0)  # hold it while the others try
lock.release()
"""


@pytest.mark.parametrize("stale", [False, True], ids=["free", "stale"])
def test_racing_processes_one_wins(tmp_path, stale):
    """Eight processes try at the same moment, on a free lock or on the stale lock of a dead process:
    exactly one gets it."""
    run_dir, go = tmp_path / "run", tmp_path / "go"
    run_dir.mkdir()
    if stale:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        _write_lock(run_dir, pid=int(dead.stdout), process_start=None)
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(run_dir), str(go)], cwd=REPO, stdout=subprocess.PIPE,
                               text=True) for _ in range(8)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready.*"))) < len(racers):  # every racer waits for the go
        assert time.monotonic() < deadline
        time.sleep(0.01)
    go.touch()
    results = sorted(proc.communicate(timeout=120)[0].strip() for proc in racers)
    assert results == ["lost"] * 7 + ["won"], results


HOLDER = ("import sys, time; from pathlib import Path; from framework.training.run_lock import RunLock; "
          "assert RunLock(Path(sys.argv[1])).acquire() is None; print('locked', flush=True); time.sleep(600)")


@pytest.mark.parametrize("executor", [["engine.workers=0"], ["engine.executor=slurm", "engine.sbatch_args.time=10"]],
                         ids=["local", "slurm"])
def test_force_leaves_a_cell_locked_by_another_process(tmp_path, executor):
    """`--force` deletes a cell only under its lock: a cell another live process holds (trains) keeps its
    files, is reported `locked by ...` and is neither rerun nor submitted."""
    from framework.config import parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry
    from framework.results.run_folder import write_scores, write_status

    out = tmp_path / "results"
    overrides = ["tasks=digits", "task.max_epochs=1", *executor]
    (spec,) = expand(parse_overrides([*overrides, f"engine.output_dir={out}"]), Registry())
    run_dir = spec.run_dir(out)
    run_dir.mkdir(parents=True)
    write_status(run_dir, "done", note="the holder's")
    write_scores(run_dir, {"best": {"test_acc": 0.5}})
    (run_dir / "theirs.txt").write_text("kept")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = read_status(run_dir)
        proc = subprocess.run([sys.executable, "-m", "framework", "run", *overrides, "--force", "-o", str(out)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"locked by pid {holder.pid} on {socket.gethostname()}" in proc.stdout, proc.stdout
    assert (run_dir / "theirs.txt").read_text() == "kept"
    assert read_status(run_dir) == before and (run_dir / "scores.json").exists()
    assert "submitted as job array" not in proc.stdout  # the slurm executor submitted nothing for it
