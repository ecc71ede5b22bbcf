"""Local executor: the grid's cells in `engine.workers` worker processes on this machine.

Each worker is a long-lived process that imports torch and Lightning once and then trains one cell after
another, so a grid does not pay the import cost per cell. A cell that raises is recorded by `run.execute`
as usual; a worker that dies (segfault, out-of-memory kill, `kill -9`) takes only its current cell with
it: the cell is recorded as failed with the signal, a fresh worker replaces the dead one, and the rest of
the grid goes on. `engine.workers=0` trains in this process, which is what a debugger wants.

Devices: when GPUs are visible, each worker sees only its own (`CUDA_VISIBLE_DEVICES`), `engine.devices`
of them; on the CPU the cores are split evenly between workers (torch's intra-op threads).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait

from framework.config.grid import RunSpec
from framework.errors import FrameworkError
from framework.results import run_folder

Report = Callable[[RunSpec, dict], None]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, without importing torch (which would initialise CUDA here)."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip() and g.strip() != "-1"]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


def worker_environments(workers: int, devices_per_run: int) -> list[dict[str, str]]:
    """The environment variables of each worker: its GPUs, or its share of the CPU threads (of
    OMP_NUM_THREADS when set, else of every core)."""
    gpus = visible_gpus()
    if gpus:
        if workers * devices_per_run > len(gpus):
            raise FrameworkError(
                f"engine.workers={workers} x engine.devices={devices_per_run} needs {workers * devices_per_run} GPUs, "
                f"{len(gpus)} visible; lower engine.workers"
            )
        return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[i * devices_per_run:(i + 1) * devices_per_run])} for i in range(workers)]
    threads = str(max(1, _thread_budget() // workers))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "CUDA_VISIBLE_DEVICES": ""} for _ in range(workers)]


def _thread_budget() -> int:
    """The CPU threads the grid may use: OMP_NUM_THREADS when the user set it (a shared machine, a
    benchmark), else every core."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """A worker must not outlive the `framework` process (killed with SIGKILL, it cannot stop its workers):
    an orphan would go on training a cell that the next command resumes too."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
        return
    except (OSError, AttributeError):
        pass
    parent = os.getppid()

    def watch() -> None:  # elsewhere: poll for the parent's death
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _serve(connection: Connection, environment: dict[str, str]) -> None:
    """A worker's main loop: receive (spec, plugin_paths, force), train it, send back the outcome."""
    _die_with_parent()
    os.environ.update(environment)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops workers itself
    import torch

    from framework.config.registry import Registry
    from framework.training.run import execute

    torch.set_num_threads(int(environment.get("OMP_NUM_THREADS", torch.get_num_threads())))
    registries: dict[tuple[str, ...], Registry] = {}
    connection.send(None)  # ready: imports done
    while True:
        message = connection.recv()
        if message is None:
            _exit_now()
        spec, plugin_paths, force = message
        registry = registries.setdefault(tuple(plugin_paths), Registry(plugin_paths))
        connection.send(_as_dict(execute(spec, registry, force=force)))


def _exit_now() -> None:
    """End a worker without the interpreter's teardown, which frees the thousands of modules that torch,
    Lightning and the plugins imported (~3,000) one by one: about 2 s of CPU per worker, paid after the
    grid's last cell, for nothing. Every run's files are written and closed by then (run.execute returns
    after status.json); only the standard streams and log handlers may still hold output."""
    import logging
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def _as_dict(outcome) -> dict:
    """A run.Outcome as the plain dict that crosses the pipe (and that run_all returns)."""
    return {"state": outcome.state, "seconds": outcome.seconds, "error": outcome.error, "scores": outcome.scores}


class _Worker:
    def __init__(self, context, environment: dict[str, str]):
        self.connection, child = context.Pipe()
        # not a daemon: a run may start processes of its own (DataLoader workers, DDP); the worker dies
        # with this process anyway (_die_with_parent) and is stopped by run_all
        self.process = context.Process(target=_serve, args=(child, environment), daemon=False)
        self.process.start()
        child.close()
        self.environment, self.ready = environment, False
        self.index: int | None = None  # the position in the grid of the cell it trains, None when idle

    def give(self, index: int, spec: RunSpec, plugin_paths: list[str], force: bool) -> None:
        self.index = index
        self.connection.send((spec, plugin_paths, force))

    def ask_to_stop(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass

    def stop(self) -> None:
        """Wait for the worker to end (after ask_to_stop), killing it if it does not within 5 s."""
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _death(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"worker process died from signal {signal.Signals(-code).name} (e.g. segfault or out-of-memory kill)"
    return f"worker process exited with status {code} while training"


def _record_death(spec: RunSpec, error: str) -> dict:
    run_dir = spec.run_dir(spec.config["engine"]["output_dir"])
    if run_dir.exists():
        run_folder.write_status(run_dir, "failed", error=error, finished=time.time())
    return {"state": "failed", "seconds": 0.0, "error": error, "scores": {}}


def run_all(runs: list[RunSpec], plugin_paths: list[str], workers: int, force: bool = False,
            report: Report | None = None) -> list[dict]:
    """Train every cell; returns one outcome dict (state, seconds, error, scores) per run, in order."""
    if workers == 0:
        return _run_in_this_process(runs, plugin_paths, force, report)
    devices = max((spec.config["engine"]["devices"] for spec in runs), default=1)
    environments = worker_environments(min(workers, len(runs)) or 1, devices)
    # spawn, not fork: a forked copy of a process that has threads (or CUDA) can deadlock
    context = multiprocessing.get_context("spawn")
    pool = [_Worker(context, env) for env in environments]
    outcomes: dict[int, dict] = {}

    def finish(worker: _Worker, outcome: dict) -> None:
        index, worker.index = worker.index, None
        outcomes[index] = outcome
        if report:
            report(runs[index], outcome)

    try:
        waiting = list(range(len(runs)))
        while len(outcomes) < len(runs):
            for worker in pool:
                if worker.index is None and worker.ready and waiting:
                    index = waiting.pop(0)
                    worker.give(index, runs[index], plugin_paths, force)
            ready = wait([w.connection for w in pool] + [w.process.sentinel for w in pool])
            for i, worker in enumerate(pool):
                if worker.connection in ready or worker.process.sentinel in ready:
                    pool[i] = _receive(worker, runs, finish, context)
    finally:
        _stop(pool, runs)
    return [outcomes[i] for i in range(len(runs))]


def _run_in_this_process(runs: list[RunSpec], plugin_paths: list[str], force: bool,
                         report: Report | None) -> list[dict]:
    """engine.workers=0: every cell in this process, one after the other (for a debugger)."""
    from framework.config.registry import Registry
    from framework.training.run import execute

    registry, outcomes = Registry(plugin_paths), []
    for spec in runs:
        outcomes.append(_as_dict(execute(spec, registry, force=force)))
        if report:
            report(spec, outcomes[-1])
    return outcomes


def _receive(worker: _Worker, runs: list[RunSpec], finish: Callable[[_Worker, dict], None], context) -> _Worker:
    """Handle what woke `worker` up: its first message (ready), a cell's outcome, or its death, in which
    case its cell is recorded as failed and a fresh worker (returned) takes its place."""
    try:
        if worker.connection.poll():
            message = worker.connection.recv()
            if worker.ready:
                finish(worker, message)
            worker.ready = True
            return worker
    except (EOFError, OSError):
        pass
    if worker.process.is_alive():
        return worker
    worker.process.join()
    error = _death(worker.process)
    if worker.index is None:
        raise FrameworkError(f"a local worker could not start: {error}")
    finish(worker, _record_death(runs[worker.index], error))
    return _Worker(context, worker.environment)


def _stop(pool: list[_Worker], runs: list[RunSpec]) -> None:
    """End every worker; a cell still training (the grid was interrupted) resumes next time."""
    for worker in pool:
        if worker.index is not None:  # interrupted: the cell resumes from its checkpoint next time
            worker.process.kill()
            worker.process.join()
            _record_death(runs[worker.index], "interrupted before it finished; run again to resume from its last checkpoint")
    for worker in pool:  # all are told first, so that they exit side by side, not one after the other
        worker.ask_to_stop()
    for worker in pool:
        worker.stop()
