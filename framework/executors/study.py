"""tpe search workers: each asks its study for a trial, trains it as an ordinary run, tells the result.

A study (one per task x optimizer, config/studies.py) lives in Optuna storage that every worker opens: a
JournalStorage file under the output folder by default (array tasks on other nodes share it through the
network filesystem), or an RDB URL. Trials are asked while others train, so TPE learns from the finished
ones. Asking is serialised by a lock file beside the journal, which keeps the budget exact: a worker
claims its trial (who it is, as a run lock records it) under that lock, and asks nothing once `trials`
trials exist.

A worker that dies (kill -9, a cancelled job) leaves its trial RUNNING. The next worker to ask finds it:
when the claimant is gone (its process on this host ended, the same SLURM job was requeued, or the claim
is old and nothing holds the trial's run directory lock) it claims the trial again and trains it with the
same values, which resumes its run directory. So a study killed part-way finishes its budget on the next
command, with no trial lost or trained twice.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config.grid import RunSpec
from framework.config.registry import Registry
from framework.config.search import Search
from framework.config.studies import SEARCH_FOLDER, StudyPlan, trial_spec
from framework.errors import ConfigError, FrameworkError
from framework.executors.local import _death
from framework.results import run_folder

CLAIM, RUN_DIR, STATE = "framework_claim", "framework_run_dir", "framework_state"  # trial user attributes
CONFIGURATION = "framework_configuration"  # study user attribute: what its trials were asked for (fingerprint)


def open_storage(plan: StudyPlan) -> Any:
    """The study's Optuna storage: an RDB URL as given, else the journal file (created with its folder)."""
    import optuna
    from optuna.storages.journal import (
        JournalFileBackend,
        JournalFileOpenLock,
        JournalStorage,
    )

    if "://" in plan.storage:
        return optuna.storages.RDBStorage(plan.storage)
    Path(plan.storage).parent.mkdir(parents=True, exist_ok=True)
    # open-with-O_EXCL locks, which work on NFS v3 and later (the default symlink lock does too)
    return JournalStorage(JournalFileBackend(plan.storage, lock_obj=JournalFileOpenLock(plan.storage)))


def ask_lock(plan: StudyPlan) -> Any:
    """The lock that serialises asking and claiming trials (a lock file; freed after 30 s if its holder died)."""
    from optuna.storages.journal import JournalFileOpenLock

    base = plan.storage if "://" not in plan.storage else str(Path(plan.output_dir).resolve() / SEARCH_FOLDER / plan.search.study)
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    return JournalFileOpenLock(base + ".ask")


@contextmanager
def holding(lock: Any):
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def distributions(search: Search) -> dict[str, Any]:
    """Optuna's distribution of each range; a choice of lists or mappings is asked by its index."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    result: dict[str, Any] = {}
    for r in search.ranges:
        if r.kind == "choice":
            scalar = all(c is None or isinstance(c, (bool, int, float, str)) for c in r.choices)
            result[r.key] = CategoricalDistribution(list(r.choices) if scalar else list(range(len(r.choices))))
        elif r.kind in ("int", "intlog"):
            result[r.key] = IntDistribution(int(r.low), int(r.high), log=r.kind == "intlog")
        else:
            result[r.key] = FloatDistribution(r.low, r.high, log=r.kind == "loguniform")
    return result


def values_of(search: Search, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's configuration values from its Optuna params (choice indices back to the choices)."""
    indexed = {r.key: r.choices for r in search.ranges if r.kind == "choice" and
               not all(c is None or isinstance(c, (bool, int, float, str)) for c in r.choices)}
    return {key: indexed[key][value] if key in indexed else value for key, value in params.items()}


def open_study(plan: StudyPlan, storage: Any) -> Any:
    import optuna

    pruners = {"median": optuna.pruners.MedianPruner, "asha": optuna.pruners.SuccessiveHalvingPruner}
    pruner = pruners[plan.search.pruner]() if plan.search.pruner else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=plan.name, storage=storage, direction=plan.direction, pruner=pruner,
                                load_if_exists=True)
    if check_configuration(study, plan):
        study.set_user_attr(CONFIGURATION, fingerprint(plan))
    return study


def fingerprint(plan: StudyPlan) -> str:
    """What a study's trials are asked for: the run at the space's sample point (every fixed value), the
    space and the score; a study continued by another command must have the same."""
    space = ", ".join(f"{r.key}={r.describe()}" for r in plan.search.ranges)
    return f"run {plan.template.run_id} at the sample point; {space}; {plan.direction} {plan.metric}"


def check_configuration(study: Any, plan: StudyPlan) -> bool:
    """Refuse to continue a study that was started with other fixed values, space or score (its trials would
    not be comparable, and a spent budget would silently train nothing); True when it has none recorded yet."""
    found = study.user_attrs.get(CONFIGURATION)
    if found is not None and found != fingerprint(plan):
        raise FrameworkError(f"search.study: study {plan.name} in {plan.storage} was started with other values, "
                             "space or score; give search.study a new name to start a new study (or run the "
                             "command that started it)")
    return found is None


@dataclass
class Claimed:
    """A trial this worker trains: its Optuna trial, its run, the epochs it reported before (resumed)."""

    trial: Any
    spec: RunSpec
    reported: set[int] = field(default_factory=set)


def _orphaned(frozen: Any) -> bool:
    """A RUNNING trial whose worker is gone (see the module's docstring)."""
    from framework.training.run_lock import STALE_AFTER_S, Holder, read_holder

    claim = frozen.user_attrs.get(CLAIM)
    if not isinstance(claim, dict):  # asked but never claimed: its asker died under the ask lock
        return True
    if Holder(claim, max(0.0, time.time() - claim.get("since", 0.0))).stale_reason(STALE_AFTER_S) is None:
        return False
    run_dir = frozen.user_attrs.get(RUN_DIR)
    holder = read_holder(Path(run_dir)) if run_dir else None
    return holder is None or holder.stale_reason(STALE_AFTER_S) is not None


def next_trial(study: Any, plan: StudyPlan, registry: Registry, lock: Any) -> Claimed | None:
    """Under the ask lock: an orphaned trial to finish, else a new trial while the budget lasts, else None."""
    import optuna
    from optuna.trial import Trial, TrialState

    with holding(lock):
        trials = study.get_trials(deepcopy=False)
        for frozen in trials:
            if frozen.state == TrialState.RUNNING and _orphaned(frozen):
                trial = Trial(study, frozen._trial_id)  # Optuna's handle on a trial another process asked
                spec = trial_spec(plan, registry, values_of(plan.search, frozen.params), frozen.number)
                _claim(trial, spec)
                return Claimed(trial, spec, set(frozen.intermediate_values))
        while len(trials) < plan.search.trials:
            # one seed per trial number: workers asking side by side never share a random start-up draw
            study.sampler = optuna.samplers.TPESampler(seed=(plan.search.seed * 1_000_003 + len(trials)) % 2**32)
            trial = study.ask(distributions(plan.search))
            try:
                spec = trial_spec(plan, registry, values_of(plan.search, trial.params), trial.number)
            except ConfigError as exc:  # values the configuration refuses (e.g. the batch size rule): a failed trial
                trial.set_user_attr(STATE, f"refused: {exc}")
                study.tell(trial, state=TrialState.FAIL)
                print(f"study {plan.name}: trial {trial.number} refused by the configuration checks: {exc}", flush=True)
                trials = study.get_trials(deepcopy=False)
                continue
            _claim(trial, spec)
            return Claimed(trial, spec)
        return None


def _claim(trial: Any, spec: RunSpec) -> None:
    """Record on the trial its run directory and who trains it (a trial killed before this is unclaimed: an
    orphan at once)."""
    from framework.training.run_lock import this_process

    trial.set_user_attr(RUN_DIR, str(spec.run_dir(spec.config["engine"]["output_dir"]).resolve()))
    trial.set_user_attr(CLAIM, this_process())


def train_trial(claimed: Claimed, plan: StudyPlan, registry: Registry, job_id: str | None) -> Any:
    """Train the trial's run through run.execute, with the pruning report when the search prunes; a run
    another process trains (two trials with the same values) is waited for, then read."""
    from framework.training.run import execute

    callbacks: tuple = ()
    if plan.search.pruner:
        from framework.training.pruning import PruningReport

        callbacks = (PruningReport(claimed.trial, plan.metric, claimed.reported),)
    while True:
        outcome = execute(claimed.spec, registry, job_id=job_id, extra_callbacks=callbacks)
        if outcome.state != "locked":
            return outcome
        time.sleep(5.0)


def tell(study: Any, claimed: Claimed, plan: StudyPlan) -> str | None:
    """Record the trial's run in the study: its score (the selection metric of the evaluation.checkpoint
    checkpoint), pruned, or failed (failed and diverged runs); returns the run's state, or None when the
    run was taken over by another process (which then tells)."""
    from optuna.trial import TrialState

    spec = claimed.spec
    run_dir = spec.run_dir(spec.config["engine"]["output_dir"])
    state = (run_folder.read_status(run_dir) or {}).get("state")
    if state not in run_folder.FINISHED and state != "failed":
        return None
    checkpoint = spec.config["evaluation"]["checkpoint"]
    value = ((run_folder.read_scores(run_dir) or {}).get(checkpoint) or {}).get(plan.metric) if state == "done" else None
    try:
        claimed.trial.set_user_attr(STATE, state)
        if state == "pruned":
            study.tell(claimed.trial.number, state=TrialState.PRUNED, skip_if_finished=True)
        elif isinstance(value, (int, float)) and math.isfinite(value):
            study.tell(claimed.trial.number, float(value), skip_if_finished=True)
        else:
            study.tell(claimed.trial.number, state=TrialState.FAIL, skip_if_finished=True)
    except RuntimeError:  # finished meanwhile by a worker that judged this one gone: its record stands
        pass
    return state


def work(plans: list[StudyPlan], plugin_paths: list[str], job_id: str | None = None) -> None:
    """A search worker: for each study in turn, ask -> train -> tell until its budget is spent."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    registry = Registry(plugin_paths)
    for plan in plans:
        storage, lock = open_storage(plan), ask_lock(plan)
        with holding(lock):
            study = open_study(plan, storage)
        while (claimed := next_trial(study, plan, registry, lock)) is not None:
            outcome = train_trial(claimed, plan, registry, job_id)
            if outcome.state == "failed" and (outcome.error or "").startswith("Terminated:"):
                # scancel or a preemption stops this worker: the trial stays RUNNING, and the next worker to ask
                # (or the next command) claims it again and resumes its run from the step it saved
                print(f"study {plan.name}: trial {claimed.trial.number} stopped by SIGTERM; left to resume", flush=True)
                return
            state = tell(study, claimed, plan) or outcome.state
            values = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in claimed.spec.sweep.items())
            print(f"[trial {claimed.trial.number + 1}/{plan.search.trials}] {plan.task}/{plan.optimizer}/"
                  f"{claimed.spec.run_id} {values} -> {state} ({outcome.seconds:.1f}s)", flush=True)


def _serve(plans: list[StudyPlan], plugin_paths: list[str], environment: dict[str, str]) -> None:
    """A local worker process: dies with `framework run` (a kill -9 of it leaves RUNNING trials behind)."""
    from framework.executors.local import _die_with_parent

    _die_with_parent()
    os.environ.update(environment)
    import torch

    torch.set_num_threads(int(environment.get("OMP_NUM_THREADS", torch.get_num_threads())))
    work(plans, plugin_paths)


def run_local(plans: list[StudyPlan], plugin_paths: list[str], workers: int) -> list[str]:
    """engine.workers worker processes on this machine (0: in this process) until every budget is spent;
    returns how each worker that did not end normally died (its trial is left to the next worker or command)."""
    if workers == 0:
        work(plans, plugin_paths)
        return []
    from framework.executors.local import worker_environments

    for plan in plans:  # checked here (a study started by another command is refused) before any worker starts
        with holding(ask_lock(plan)):
            open_study(plan, open_storage(plan))
    devices = max(plan.template.config["engine"]["devices"] for plan in plans)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_serve, args=(plans, plugin_paths, environment))
                 for environment in worker_environments(workers, devices)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    return [_death(process) for process in processes if process.exitcode]


def submit(plans: list[StudyPlan], plugin_paths: list[str]) -> list[str]:
    """slurm executor: one job array per study of engine.workers array tasks, each a search worker (its sbatch
    options are the study's runs', time included: a worker trains several trials); returns the array ids."""
    import submitit

    from framework.executors import slurm
    from framework.executors.slurm_job import StudyJob

    engine = plans[0].template.config["engine"]
    folder = slurm.slurm_folder(engine) / time.strftime("%Y%m%d-%H%M%S")
    arrays = []
    for plan in plans:
        with holding(ask_lock(plan)):  # the study exists before any worker starts
            open_study(plan, open_storage(plan))
        executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=engine["slurm"]["max_requeues"])
        executor.update_parameters(**slurm.sbatch_parameters(plan.template.config, plan.task))
        with executor.batch():
            jobs = [executor.submit(StudyJob([plan], plugin_paths)) for _ in range(max(1, plan.workers))]
        arrays.append(jobs[0].job_id.split("_")[0])
    return arrays
