"""What runs inside a SLURM job submitted by the slurm executor.

submitit pickles these callables into the job's folder and calls them on the compute node, so they live
in the installed package (a function of a script or test module would not import there).
"""

from __future__ import annotations

import os
import time

import submitit

from framework.config.grid import RunSpec
from framework.results import run_folder


class CellJob(submitit.helpers.Checkpointable):
    """Train one grid cell. On a timeout or preemption submitit calls `checkpoint`, which records the
    requeue in status.json; the training side (`framework.training.preemption`) has saved last.ckpt by then, and
    the requeued job resumes from it through the usual resume path."""

    def __init__(self, spec: RunSpec, plugin_paths: list[str]):
        self.spec, self.plugin_paths = spec, list(plugin_paths)

    def __call__(self) -> dict:
        os.environ["FRAMEWORK_SLURM_JOB"] = "1"
        from framework.config.registry import Registry
        from framework.training.run import execute, train_and_test

        registry = Registry(self.plugin_paths)
        environment = submitit.JobEnvironment()
        if environment.global_rank != 0:
            # another process of a multi-device run: it trains with rank 0, which alone records the run
            train_and_test(self.spec, registry, self._run_dir())
            return {"state": "rank", "rank": environment.global_rank}
        outcome = execute(self.spec, registry, job_id=environment.job_id)
        return {"state": outcome.state, "seconds": outcome.seconds, "error": outcome.error}

    def _run_dir(self):
        return self.spec.run_dir(self.spec.config["engine"]["output_dir"])

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        run_dir = self._run_dir()
        status = run_folder.read_status(run_dir) or {}
        if status.get("state") not in run_folder.FINISHED:
            run_folder.write_status(run_dir, "requeued", requeues=status.get("requeues", 0) + 1, requeued=time.time())
        return submitit.helpers.DelayedSubmission(self)


def plot_job(output_dir: str) -> list[str]:
    """The `engine.slurm.plot` job: what `framework plot` writes (heatmaps of grids, best so far and scatter
    of searches, the tables), after every cell ended (afterany)."""
    from framework.results.analysis import analyze

    return [str(path) for path in analyze(output_dir).written]


class StudyJob(submitit.helpers.Checkpointable):
    """One array task of a tpe search: a search worker (executors/study.py) that asks, trains and tells trials
    until the study's budget is spent. Requeued after a timeout or preemption, it claims again the trial it
    was training (same SLURM job) and resumes that run from its last checkpoint."""

    def __init__(self, plans: list, plugin_paths: list[str]):
        self.plans, self.plugin_paths = list(plans), list(plugin_paths)

    def __call__(self) -> str:
        os.environ["FRAMEWORK_SLURM_JOB"] = "1"
        from framework.executors.study import work

        work(self.plans, self.plugin_paths, job_id=submitit.JobEnvironment().job_id)
        return "study budget spent"
