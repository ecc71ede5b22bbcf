# python -m pytest tests/test_search.py
"""Searches beyond grids (docs/search.md): the `search:` grammar and its errors, quasi-random trials as
ordinary runs, tpe studies asked by local workers sharing one journal, a study killed with kill -9 and
finished by the next command, pruning recorded as `pruned`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.config import parse_overrides
from framework.config.search import parse_search
from framework.results.run_folder import (
    load_runs,
    read_config,
    read_scores,
    read_status,
)

from .conftest import REPO, run_cli

SPACE = ["tasks=digits", "search.optimizer.learning_rate=loguniform(1e-4,1e-1)"]
SHORT = ["task.max_steps=3", "task.max_epochs=null"]  # a few optimizer steps: each trial is a real, tiny fit


def _problems(*overrides: str) -> list[str]:
    request = parse_overrides(list(overrides))
    return parse_search(request.search, request.search_source)[1]


def test_the_grammar_reads_every_kind_of_range():
    request = parse_overrides(["search.strategy=random", "search.trials=5", "search.seed=3",
                               "search.optimizer.learning_rate=loguniform(1e-4, 1e-1)", "search.task.dropout=uniform(0,0.5)",
                               "search.task.hidden_layers=int(1,3)", "search.task.hidden_size=intlog(16,256)",
                               "search.optimizer.betas=choice([0.9,0.999],[0.95,0.99])"])
    search, problems = parse_search(request.search, "command line")
    assert problems == [] and search.trials == 5 and search.seed == 3 and search.study == "random-seed3"
    kinds = {r.key: (r.kind, r.low, r.high, r.choices) for r in search.ranges}
    assert kinds["optimizer.learning_rate"] == ("loguniform", 1e-4, 1e-1, ())
    assert kinds["optimizer.betas"][3] == ([0.9, 0.999], [0.95, 0.99])
    for trial in search.draws():
        assert 1e-4 <= trial["optimizer.learning_rate"] <= 1e-1 and 0 <= trial["task.dropout"] <= 0.5
        assert trial["task.hidden_layers"] in (1, 2, 3) and 16 <= trial["task.hidden_size"] <= 256
        assert isinstance(trial["task.hidden_size"], int) and trial["optimizer.betas"] in ([0.9, 0.999], [0.95, 0.99])


@pytest.mark.parametrize("strategy", ["random", "quasirandom"])
def test_draws_are_fixed_by_the_seed_and_a_larger_budget_extends_them(strategy):
    def draws(trials: int, seed: int) -> list[dict]:
        search, _ = parse_search({"strategy": strategy, "trials": trials, "seed": seed,
                                  "optimizer.learning_rate": "loguniform(1e-4, 1e-1)", "task.hidden_layers": "int(1, 4)"}, "test")
        return search.draws()

    assert draws(12, 0) == draws(12, 0)
    assert draws(40, 0)[:12] == draws(12, 0)  # raising the budget keeps the trials already drawn
    assert draws(12, 1) != draws(12, 0)
    assert {t["task.hidden_layers"] for t in draws(40, 0)} == {1, 2, 3, 4}  # every integer of the range is reached


@pytest.mark.parametrize(("overrides", "message"), [
    (["search.strategy=random", "search.trials=4", "search.optimizer.learning_rate=loguniform(1e-1,1e-4)"],
     "search.optimizer.learning_rate (command line): low must be below high, got loguniform(0.1, 0.0001)"),
    (["search.strategy=random", "search.trials=4", "search.optimizer.learning_rate=loguniform(0,1e-1)"],
     "search.optimizer.learning_rate (command line): a log range needs low > 0"),
    (["search.trails=4", "search.optimizer.learning_rate=choice(1e-3,1e-2)"],
     "search.trails (command line): neither a search setting"),
    (["search.strategy=randm", "search.trials=4", "search.optimizer.learning_rate=uniform(0,1)"],
     "search.strategy (command line): must be one of grid, random, quasirandom, tpe, got 'randm'; did you mean random?"),
    (["search.strategy=random", "search.optimizer.learning_rate=uniform(0,1)"], "search.trials (command line): strategy random needs a budget"),
    (["search.strategy=random", "search.trials=4", "search.pruner=median", "search.optimizer.learning_rate=uniform(0,1)"],
     "search.pruner (command line): pruning reports to an Optuna study, so it needs search.strategy=tpe"),
    (["search.strategy=random", "search.trials=4", "search.optimizer.learning_rate=normal(0,1)"],
     "search.optimizer.learning_rate (command line): expected one of loguniform(...)"),
    (["search.optimizer.learning_rate=uniform(0,1)"], "strategy grid needs choice(...) values"),
])
def test_bad_search_input_is_one_line_naming_the_key(overrides, message):
    problems = _problems(*overrides)
    assert len(problems) == 1 and message in problems[0], problems


def test_bad_search_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "results"
    bad_key = run_cli("run", "tasks=digits", "search.strategy=random", "search.trials=2",
                      "search.optimizer.learnig_rate=loguniform(1e-4,1e-1)", "-o", str(out), cwd=tmp_path)
    assert bad_key.returncode == 2, bad_key.stderr
    assert "optimizer.learnig_rate (search command line): unknown key; did you mean optimizer.learning_rate?" in bad_key.stderr
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("tasks: digits\nsearch:\n  strategy: quasirandom\n  trials: 3\n"
                          "  optimizer.learning_rate: uniform(0.1, 0.01)\n")
    bad_range = run_cli("run", "-e", str(experiment), "-o", str(out), cwd=tmp_path)
    assert bad_range.returncode == 2
    assert f"search.optimizer.learning_rate (experiment file {experiment}): low must be below high" in bad_range.stderr
    assert not out.exists()


@pytest.mark.slow
def test_a_quasirandom_study_of_12_trials_is_the_same_runs_each_time(tmp_path):
    out = tmp_path / "results"
    args = ["run", *SPACE, "search.strategy=quasirandom", "search.trials=12", "search.seed=7",
            "search.task.hidden_size=choice(32,64)", *SHORT, "-o", str(out)]
    listed = run_cli(*args, "--dry-run", cwd=tmp_path, check=True)
    assert "12 runs (dry run" in listed.stdout and not out.exists()
    first = run_cli(*args, cwd=tmp_path, check=True)
    assert "12 done, 0 skipped" in first.stdout
    runs = load_runs(out)
    assert len(runs) == 12 and all(r["state"] == "done" for r in runs)
    sections = sorted((read_config(Path(r["run_dir"]))["search"] for r in runs), key=lambda s: s["trial"])
    assert sections == [{"study": "quasirandom-seed7", "strategy": "quasirandom", "trial": i} for i in range(12)]
    rates = {read_config(Path(r["run_dir"]))["optimizer"]["learning_rate"] for r in runs}
    assert len(rates) == 12 and all(1e-4 <= lr <= 1e-1 for lr in rates)
    again = run_cli(*args, cwd=tmp_path, check=True)
    assert "0 done, 12 skipped" in again.stdout  # same trials, same run_ids: nothing trains
    assert {r["run_id"] for r in load_runs(out)} == {r["run_id"] for r in runs}


def _study(out: Path, name: str = "tpe-seed0/digits/adamw_baseline"):
    import optuna

    from framework.executors.study import RUN_DIR  # noqa: F401  (the attribute names the test reads)

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / ".search" / "tpe-seed0.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def _check_budget(out: Path, trials: int) -> list[dict]:
    """Every trial of the study complete, each in its own run folder, trial numbers 0..trials-1."""
    study = _study(out)
    states = [t.state.name for t in study.get_trials()]
    assert states == ["COMPLETE"] * trials, states
    runs = load_runs(out)
    assert len(runs) == trials and all(r["state"] == "done" for r in runs)
    numbers = sorted(read_config(Path(r["run_dir"]))["search"]["trial"] for r in runs)
    assert numbers == list(range(trials))
    for trial in study.get_trials():  # the value told is the run's validation score
        run_dir = Path(trial.user_attrs["framework_run_dir"])
        assert trial.value == read_scores(run_dir)["best"]["val_acc"]
    return runs


@pytest.mark.slow
def test_a_tpe_study_run_by_two_local_workers_sharing_one_journal(tmp_path):
    out = tmp_path / "results"
    args = ["run", *SPACE, "search.strategy=tpe", "search.trials=5", "engine.workers=2", *SHORT, "-o", str(out)]
    listed = run_cli(*args, "--dry-run", cwd=tmp_path, check=True)
    assert "0 of 5 trials asked" in listed.stdout and not out.exists()
    done = run_cli(*args, cwd=tmp_path, check=True)
    assert "(2 search workers)" in done.stdout and "5 of 5 trials asked, 5 complete" in done.stdout
    assert [p.name for p in (out / ".search").glob("*.journal")] == ["tpe-seed0.journal"]
    runs = _check_budget(out, 5)
    pids = {read_status(Path(r["run_dir"])).get("attempts") for r in runs}
    assert pids == {1}
    again = run_cli(*args, cwd=tmp_path, check=True)  # the budget is spent: nothing is asked or trained
    assert "5 of 5 trials asked, 5 complete" in again.stdout and len(load_runs(out)) == 5


@pytest.mark.slow
def test_a_study_killed_with_kill_9_is_finished_by_the_next_command(tmp_path):
    out = tmp_path / "results"
    args = [*SPACE, "search.strategy=tpe", "search.trials=6", "engine.workers=2", "task.max_epochs=4", "-o", str(out)]
    command = subprocess.Popen([sys.executable, "-m", "framework", "run", *args], cwd=tmp_path, env={**os.environ},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill it while trials are training, after some finished
        journal = out / ".search" / "tpe-seed0.journal"
        states = [t.state.name for t in _study(out).get_trials()] if journal.exists() and journal.stat().st_size else []
        if states.count("COMPLETE") >= 1 and "RUNNING" in states:
            break
        time.sleep(0.2)
    command.send_signal(signal.SIGKILL)
    command.wait()
    time.sleep(1.0)  # the workers die with it (PR_SET_PDEATHSIG)
    killed = [t for t in _study(out).get_trials() if t.state.name == "RUNNING"]
    assert killed and len(_study(out).get_trials()) < 6

    again = run_cli("run", *args, cwd=tmp_path, check=True)
    assert "6 of 6 trials asked, 6 complete" in again.stdout
    runs = _check_budget(out, 6)
    attempts = {Path(r["run_dir"]).name: read_status(Path(r["run_dir"]))["attempts"] for r in runs}
    resumed = {Path(t.user_attrs["framework_run_dir"]).name for t in killed}
    # the killed trials were taken up again and resumed in their own folders; no other trial ran twice
    assert {name for name, n in attempts.items() if n == 2} <= resumed and max(attempts.values()) <= 2


def test_a_pruned_trial_is_recorded_pruned_and_skipped_after(tmp_path):
    import optuna

    from framework.config.grid import expand
    from framework.config.registry import Registry
    from framework.training.pruning import PruningReport
    from framework.training.run import execute

    registry = Registry([])
    (spec,) = expand(parse_overrides(["tasks=digits", "task.max_epochs=3", f"engine.output_dir={tmp_path}"]), registry)
    # a pruner that stops any trial whose val_acc is below 2: the first report prunes it
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask()
    outcome = execute(spec, registry, extra_callbacks=(PruningReport(trial, "val_acc"),))
    run_dir = spec.run_dir(tmp_path)
    assert outcome.state == "pruned" and "pruned by the search's pruner at epoch 0: val_acc=" in outcome.error
    assert read_status(run_dir)["state"] == "pruned" and read_scores(run_dir) is None  # never a result to pick
    assert list(trial.study.trials[0].intermediate_values) == [0]
    assert execute(spec, registry).state == "skipped"  # a finished outcome: not trained again


def test_run_help_names_the_search_grammar():
    done = subprocess.run([sys.executable, "-m", "framework", "run", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=True)
    assert "search.strategy=" in done.stdout and "docs/search.md" in done.stdout


@pytest.mark.slow
def test_a_tpe_study_on_slurm_with_two_array_tasks_survives_a_killed_task(tmp_path):
    from .conftest import require_service
    from .test_slurm import _cluster_up, _wait

    require_service("SLURM cluster", _cluster_up(), "../shared/slurm/start-local-slurm.sh starts one (.ci/run does)")
    out = tmp_path / "results"
    args = ["run", *SPACE, "search.strategy=tpe", "search.trials=6", "engine.workers=2", "task.max_epochs=4",
            "engine.executor=slurm", "engine.sbatch_args.time=10", "-o", str(out)]
    submitted = run_cli(*args, cwd=tmp_path, check=True)
    assert "submitted as job array" in submitted.stdout and "(2 search workers each)" in submitted.stdout

    def running_after_one_complete():
        states = [t.state.name for t in _study(out).get_trials()]
        return states.count("COMPLETE") >= 1 and [t for t in _study(out).get_trials() if t.state.name == "RUNNING"]

    (victim, *_) = _wait(running_after_one_complete, "a trial to train after one finished")
    job = victim.user_attrs["framework_claim"]["slurm_job"]
    # by its array name (123_1): the first task's own job id is the array's, which scancel reads as every task
    queue = subprocess.run(["squeue", "-h", "-o", "%A %i"], capture_output=True, text=True, check=True).stdout
    task = dict(line.split() for line in queue.splitlines())[job]
    subprocess.run(["scancel", "--signal=KILL", "--full", task], check=True)  # the array task dies like kill -9
    _wait(lambda: not subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True, check=True).stdout.strip(),
          "both array tasks to leave the queue")
    if len([t for t in _study(out).get_trials() if t.state.name == "COMPLETE"]) < 6:  # the other task ended first
        run_cli(*args, cwd=tmp_path, check=True)  # the same command again submits workers that finish the budget
        _wait(lambda: [t.state.name for t in _study(out).get_trials()] == ["COMPLETE"] * 6, "the budget to complete")
    runs = _check_budget(out, 6)
    attempts = {Path(r["run_dir"]).name: read_status(Path(r["run_dir"]))["attempts"] for r in runs}
    # the killed task trained one trial (the victim, or the next it claimed before the signal landed): that
    # one alone was trained again, resumed by another worker; the others once
    twice = [name for name, n in attempts.items() if n > 1]
    assert len(twice) <= 1 and all(attempts[name] == 2 for name in twice), attempts
    assert all(read_status(out / "digits" / "adamw_baseline" / name)["job_id"] != task for name in twice)
    status = run_cli("status", str(out), cwd=tmp_path, check=True)
    assert "6 done" in status.stdout


def test_a_study_is_not_continued_with_other_fixed_values(tmp_path):
    import optuna

    from framework.config.grid import expand, search_axes
    from framework.config.registry import Registry
    from framework.config.studies import plan_studies
    from framework.errors import FrameworkError
    from framework.executors.study import open_storage, open_study

    def plan(*overrides: str):
        request = parse_overrides([*SPACE, "search.strategy=tpe", "search.trials=3", f"engine.output_dir={tmp_path}", *overrides])
        (found,) = plan_studies(request, search_axes(request)[0], expand(request, Registry([])))
        return found

    first = plan("task.max_epochs=2")
    open_study(first, open_storage(first))
    assert optuna.load_study(study_name=first.name, storage=open_storage(first)).user_attrs["framework_configuration"]
    open_study(first, open_storage(first))  # the same command continues it
    for other in (plan("task.max_epochs=3"), plan("task.max_epochs=2", "search.optimizer.learning_rate=loguniform(1e-4,1)")):
        with pytest.raises(FrameworkError, match="was started with other values, space or score; give search.study a new name"):
            open_study(other, open_storage(other))
    renamed = plan("task.max_epochs=3", "search.study=longer")
    assert open_study(renamed, open_storage(renamed)).study_name == "longer/digits/adamw_baseline"
