"""One run end to end: build the task and optimizer, fit with Lightning, test the best and the last
checkpoint, and record everything in the run directory.

A run that raises is recorded as failed, one whose loss stops being finite as diverged; finished runs
are skipped and unfinished ones resume from their last checkpoint. A run whose lock another process
took over stops at a step and is reported interrupted, recording nothing: the run directory is the new
holder's.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config import Node
from framework.config.batch_size import processes
from framework.config.grid import RunSpec
from framework.config.registry import Registry
from framework.errors import DivergedError, FrameworkError, TrialPruned, one_line
from framework.results import run_folder
from framework.training.environment import write_environment

MODEL_SUMMARY_FILE = "model_summary.txt"  # parameter counts per module, written into each run directory


@dataclass
class Outcome:
    spec: RunSpec
    # done / failed / diverged / pruned (by a search's pruner) / skipped / locked (another process trains it) /
    # interrupted (another process took the lock over while this one trained: it stopped, nothing recorded)
    state: str
    seconds: float = 0.0
    error: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)


class OptimizerFactory:
    """What a task receives as `optimizer`: calls the optimizer plugin with the run's config and the
    number of optimizer steps of the whole training (for schedules)."""

    def __init__(self, configure: Any, config: Node):
        self.configure, self.config = configure, config

    def __call__(self, model: Any, total_steps: int) -> Any:
        run = dict(self.config["run"]) if "run" in self.config else {}
        return self.configure(model, self.config.replace(run={**run, "total_steps": int(total_steps)}))


def quiet_lightning() -> None:
    """One line per run is printed by the CLI; Lightning's banners and tips would drown it."""
    import lightning.pytorch  # noqa: F401  (sets its loggers to INFO on import: lower them after)

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    # a machine with SLURM's commands installed is not a SLURM job: the local executor means it
    warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system.*")


def _checkpoint_step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def _in_slurm_job() -> bool:
    """Inside a job submitted by the slurm executor (set by executors/slurm_job.py)."""
    return os.environ.get("FRAMEWORK_SLURM_JOB") == "1"


def _stop_callbacks(run_dir: Path, lock: Any = None) -> list:
    """The step-exact stop (framework.training.preemption): on SLURM's signals inside a SLURM job, and when the
    run's lock (held by `execute`; absent on the other ranks of a SLURM job) is taken over."""
    if not _in_slurm_job() and lock is None:
        return []
    from framework.training.preemption import PreemptionCheckpoint
    from framework.training.run_lock import LockWatch

    return [PreemptionCheckpoint(run_folder.checkpoint_dir(run_dir) / "last.ckpt", signals=_in_slurm_job(),
                                 watch=LockWatch(lock) if lock is not None else None)]


def _cluster_plugins() -> list:
    """In a SLURM job, requeueing is submitit's (framework.training.preemption): Lightning's own is turned off."""
    if not _in_slurm_job():
        return []
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)]


def _strategy(devices: int) -> Any:
    """Several devices (`devices`: the processes of the run, on every node): DDP. In a SLURM job each
    device has its own task (process), started by srun;
    elsewhere Lightning starts them with `ddp_spawn` (framework.training.spawned_ddp), because its default
    `ddp` launcher reruns the command line, which for `framework run` would be the whole grid."""
    if devices == 1:
        return "auto"
    if _in_slurm_job():
        return "ddp"
    from framework.training.spawned_ddp import SpawnedDDP

    return SpawnedDDP()


def load_task(config: Node, registry: Registry):
    """The task's model and data module for `config` (a resolved config), with the optimizer plugin
    injected, after seeding every RNG with engine.seed."""
    import lightning.pytorch as pl

    task_module = registry.get("task", config.task.name).load()
    optimizer_module = registry.get("optimizer", config.optimizer.name).load()
    for module, name in ((task_module, "get_task"), (optimizer_module, "configure_optimizers")):
        if not callable(getattr(module, name, None)):
            raise FrameworkError(f"{module.__file__} does not define {name}(); see the plugin template")
    pl.seed_everything(config.engine.seed, workers=True, verbose=False)
    return task_module.get_task(OptimizerFactory(optimizer_module.configure_optimizers, config), config)


def _checkpoints(run_dir: Path, task: Node) -> tuple:
    """The best checkpoint (by task.target_metric) and last.ckpt, both written after each validation.

    last.ckpt has its own callback: since Lightning 2.6, `save_last=True` writes it only when a top-k
    checkpoint is written at the same step, i.e. when the target metric improved. last.ckpt then held the
    last improving epoch, not the last epoch: "last" scores were those of an earlier epoch, a killed run
    resumed from there, and a resumed process that saw no improvement wrote the true last epoch at
    train end (`on_train_end`), so its "last" differed from an uninterrupted run's.

    Lightning runs checkpoint callbacks after all others and in this order, so last.ckpt is written after
    the best one and records its updated state: a kill between the two resumes from the previous epoch.
    No version counter: the epoch redone after such a kill rewrites its best-epoch=E-step=S.ckpt under
    the same name (it is the same checkpoint) instead of adding a -v1 copy beside the orphan.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    directory = run_folder.checkpoint_dir(run_dir)
    best = ModelCheckpoint(dirpath=directory, filename="best-{epoch}-{step}", monitor=task.target_metric,
                           mode=task.target_metric_mode, save_top_k=1, enable_version_counter=False)
    # monitor=None, save_top_k=1: every validation replaces the one checkpoint, named last.ckpt
    last = ModelCheckpoint(dirpath=directory, filename="last", save_top_k=1, enable_version_counter=False)
    return best, last


def build(spec: RunSpec, registry: Registry, run_dir: Path, resume: Path | None = None, lock: Any = None,
          loggers: list | None = None, extra_callbacks: tuple = ()):
    """The task's model and data module and the Lightning Trainer of one run (`lock`: the run's RunLock;
    `loggers`: training.loggers.run_loggers, beside metrics.csv; `extra_callbacks`: e.g. a search trial's
    pruning report)."""
    import lightning.pytorch as pl

    from framework.training import lightning_speedups
    from framework.training.callbacks import (CheckpointMetadata, DivergenceCheck, EpochSeed, LoggingInterval,
                                              ModelSummaryFile, NoProfiler, TrainTimer)
    from framework.training.checkpoint_io import AtomicCheckpointIO
    from framework.training.csv_logs import ResumableCSVLogger
    from framework.training.optimizer_modes import OptimizerModes
    from framework.training.trainer_options import early_stopping, trainer_arguments

    lightning_speedups.apply()  # behaviour-identical shortcuts in Lightning's per-step calls

    config = Node({**spec.config, "run": {"id": spec.run_id, "dir": str(run_dir)}})
    model, datamodule = load_task(config, registry)

    task, engine = config.task, config.engine
    checkpoint, last = _checkpoints(run_dir, task)
    timer = TrainTimer()
    stopper = early_stopping(config)
    trainer = pl.Trainer(
        default_root_dir=run_dir,
        max_epochs=task.max_epochs if task.max_epochs is not None else -1,
        max_steps=task.max_steps if task.max_steps is not None else -1,
        **trainer_arguments(engine),  # accelerator, devices, precision, deterministic, accumulation, clipping
        log_every_n_steps=engine.log_every_n_steps,
        check_val_every_n_epoch=engine.check_val_every_n_epoch,
        enable_progress_bar=engine.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        # metrics.csv first: Lightning takes the first logger's folder as trainer.log_dir
        logger=[ResumableCSVLogger(run_dir, _checkpoint_step(resume) if resume else None), *(loggers or [])],
        callbacks=[checkpoint, last, timer, DivergenceCheck(), LoggingInterval(), EpochSeed(engine.seed), OptimizerModes(),
                   *_stop_callbacks(run_dir, lock),
                   CheckpointMetadata(config), ModelSummaryFile(run_dir / MODEL_SUMMARY_FILE),
                   *([stopper] if stopper else []), *extra_callbacks],
        plugins=[AtomicCheckpointIO(), *_cluster_plugins()],
        strategy=_strategy(processes(engine)),
        profiler=NoProfiler(),
    )
    return model, datamodule, trainer, checkpoint, timer


def score_checkpoint(trainer, model, datamodule, path: str) -> dict[str, float]:
    """Validation and test scores of the checkpoint at `path` (with its epoch and step when its name has them)."""
    scores: dict[str, float] = {}
    for evaluate in (trainer.validate, trainer.test):
        # weights_only: a checkpoint holds tensors and plain values only, so nothing in it can run code
        for values in evaluate(model, datamodule=datamodule, ckpt_path=path, verbose=False, weights_only=True):
            scores.update({k: float(v) for k, v in values.items()})
    match = re.search(r"epoch=(\d+)-step=(\d+)", Path(path).name)
    if match:
        scores.update(epoch=int(match[1]), step=int(match[2]))
    return scores


def _train_summary(trainer, model, datamodule, timer) -> dict[str, Any]:
    """scores.json's "train" entry: timings, samples per second, and how the training went."""
    stopper = trainer.early_stopping_callback
    return {
        **timer.summary(),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "precision": str(trainer.precision),  # what it trained in (engine.precision may have fallen back)
        "parameters": sum(p.numel() for p in model.parameters()),
        "stopped_early_at_epoch": stopper.stopped_epoch if stopper is not None and stopper.stopped_epoch else None,
        "skipped_samples": datamodule.skipped.count() if hasattr(datamodule, "skipped") else 0,
    }


def _check_splits(datamodule) -> None:
    """Validation and test data must never be the same objects."""
    val, test = getattr(datamodule, "data_val", None), getattr(datamodule, "data_test", None)
    if val is not None and val is test:
        raise FrameworkError(f"{type(datamodule).__name__}: data_val and data_test are the same dataset; hold out separate splits")


def train_and_test(spec: RunSpec, registry: Registry, run_dir: Path, lock: Any = None,
                   extra_callbacks: tuple = ()) -> dict[str, Any]:
    """Fit (resuming from the last checkpoint if there is one), then test each requested checkpoint;
    stops at a step, raising preemption.LockLost, if `lock` is taken over."""
    from framework.training.loggers import log_scores, logger_runs

    quiet_lightning()
    resume = run_folder.last_checkpoint(run_dir)
    with logger_runs(spec, run_dir, _checkpoint_step(resume) if resume else None) as loggers:
        model, datamodule, trainer, checkpoint, timer = build(spec, registry, run_dir, resume, lock, loggers, extra_callbacks)
        scores = _fit_and_test(spec, run_dir, resume, model, datamodule, trainer, checkpoint, timer)
        log_scores(loggers, spec.config, scores, trainer.global_step)
    return scores


def _fit_and_test(spec: RunSpec, run_dir: Path, resume: Path | None, model, datamodule, trainer, checkpoint, timer) -> dict[str, Any]:
    """train_and_test's fit and tests: scores.json's contents."""
    # Lightning allocates enough objects every step to set off the garbage collector, whose full passes
    # would walk every object of torch, Lightning and the data (~0.4M, a tenth of a second each).
    # Freezing what exists now keeps them out of those passes; unfreezing afterwards lets a grid of runs
    # in one process still free each finished run.
    gc.collect()
    gc.freeze()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume) if resume else None, weights_only=True)
    finally:
        gc.unfreeze()
    # Read the timer now: testing a checkpoint restores the callbacks' states saved in it.
    train = _train_summary(trainer, model, datamodule, timer)
    _check_splits(datamodule)
    last = run_folder.last_checkpoint(run_dir)
    paths = {"best": checkpoint.best_model_path or (str(last) if last else ""), "last": str(last) if last else ""}
    scores: dict[str, Any] = {}
    for which in spec.config["engine"]["test_checkpoints"]:
        if not paths[which]:
            raise FrameworkError(f"run {spec.run_id}: no {which} checkpoint was saved in {run_folder.checkpoint_dir(run_dir)}")
        same = [k for k in scores if paths[k] == paths[which]]
        scores[which] = dict(scores[same[0]]) if same else score_checkpoint(trainer, model, datamodule, paths[which])
    scores["train"] = train
    return scores


def execute(spec: RunSpec, registry: Registry, force: bool = False, job_id: str | None = None,
            extra_callbacks: tuple = ()) -> Outcome:
    """Run one grid cell and record its outcome; never raises for a failing run. `job_id`: the SLURM job
    training it (status.json); `extra_callbacks`: for its Trainer (a search trial's pruning report).

    The cell is trained under its run directory's lock (framework/training/run_lock.py): when another process holds
    it, the outcome is `locked` at once (no waiting) and that process's training is left alone. When
    another process takes the lock over mid-run, the outcome is `interrupted` (see `_record`)."""
    from framework.training.run_lock import RunLock

    run_dir = spec.run_dir(spec.config["engine"]["output_dir"])
    status = run_folder.read_status(run_dir)
    if not force and status and status.get("state") in run_folder.FINISHED:  # the common skip takes no lock
        return _skipped(spec, run_dir, status)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    holder = lock.acquire()
    if holder is not None:
        return Outcome(spec, "locked", 0.0, f"locked by {holder.describe()}")
    try:
        return _execute_locked(spec, registry, run_dir, force, job_id, lock, extra_callbacks)
    finally:
        lock.release()


def _skipped(spec: RunSpec, run_dir: Path, status: dict) -> Outcome:
    return Outcome(spec, "skipped", 0.0, status.get("error"), run_folder.read_scores(run_dir) or {})


def _execute_locked(spec: RunSpec, registry: Registry, run_dir: Path, force: bool, job_id: str | None, lock,
                    extra_callbacks: tuple = ()) -> Outcome:
    status = run_folder.read_status(run_dir)  # again: another process may have finished it before we locked
    if force:
        run_folder.clear_run_dir(run_dir)  # under the lock: never a cell another process trains
    elif status and status.get("state") in run_folder.FINISHED:
        return _skipped(spec, run_dir, status)
    run_folder.write_config(run_dir, spec.config)
    write_environment(run_dir, spec.config["engine"])  # env.json: versions, device, git commit
    attempts = (status or {}).get("attempts", 0) + 1
    run_folder.write_status(
        run_dir, "running", task=spec.task, optimizer=spec.optimizer, run_id=spec.run_id,
        sweep=spec.sweep, started=time.time(), attempts=attempts, **({"job_id": job_id} if job_id else {}),
    )
    start = time.perf_counter()
    try:
        scores = train_and_test(spec, registry, run_dir, lock, extra_callbacks)
    except KeyboardInterrupt:
        if lock.held():
            run_folder.write_status(run_dir, "failed", error="interrupted (Ctrl-C); run again to resume", finished=time.time())
        raise
    except DivergedError as exc:
        return _record(spec, run_dir, lock, Outcome(spec, "diverged", time.perf_counter() - start, str(exc)))
    except TrialPruned as exc:  # a search's pruner stopped it: a result of the search, not a failure
        return _record(spec, run_dir, lock, Outcome(spec, "pruned", time.perf_counter() - start, str(exc)))
    except Exception as exc:  # any failure of the task's code is recorded and the grid goes on
        outcome = Outcome(spec, "failed", time.perf_counter() - start, one_line(exc))
        return _record(spec, run_dir, lock, outcome, traceback.format_exc())
    return _record(spec, run_dir, lock, Outcome(spec, "done", time.perf_counter() - start, None, scores))


def _record(spec: RunSpec, run_dir: Path, lock, outcome: Outcome, trace: str | None = None) -> Outcome:
    """Write the attempt's outcome into the run directory, if this process still holds its lock. If
    another process took it over, that process owns status.json and scores.json now: nothing is written,
    and the attempt is reported (to the executor and the summary) as interrupted."""
    from framework.training.run_lock import read_holder

    if not lock.held():
        holder = read_holder(run_dir)
        error = f"interrupted: the lock was taken over by {holder.describe() if holder else 'another process'}"
        return Outcome(spec, "interrupted", outcome.seconds, error + (f"; {outcome.error}" if outcome.error else ""))
    if outcome.state == "done":
        run_folder.write_scores(run_dir, outcome.scores)
        run_folder.write_status(run_dir, "done", finished=time.time(), seconds=outcome.seconds)
    elif outcome.state in ("diverged", "pruned"):
        run_folder.write_status(run_dir, outcome.state, error=outcome.error, finished=time.time())
    else:
        run_folder.write_status(run_dir, "failed", error=outcome.error, traceback=trace, finished=time.time())
    return outcome
