# imported by tests/test_search_plots.py
"""An output folder of a search written by hand, with known numbers, as a search's trials leave it.

Task `toy` (val_acc chooses, test_acc is reported, higher is better): a random study of 12 trials per
optimizer (adam, sgd), each trial a learning rate drawn log-uniform from [1e-4, 1] and a weight decay
uniform from [0, 0.1] by a seeded generator, two seeds per trial. Each run's config has the section
`search: {study, strategy, trial}`; run folders are named by a hash of their values, so their order on
disk is not the trial order, and each trial's runs started in the reverse of the trial order, so that
the order of `started` is not the trial order either. Three trials do not finish: adam's trial PRUNED
(pruned, with the best validation score of the study in scores.json, as a pruner leaves a trial it stops
late), sgd's trial DIVERGED (both seeds diverged) and adam's trial FAILED_SEED (one seed failed).
Task `grid` is a plain 2 x 2 grid (no search section) that must still be drawn as a heatmap.
"""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

from framework.results.run_folder import (
    write_config,
    write_scores,
    write_status,
)

TRIALS = 12
SEEDS = (1, 2)
OPTIMIZERS = ("adam", "sgd")
STUDY = "toy-random"
PRUNED = ("adam", 4)  # (optimizer, trial)
DIVERGED = ("sgd", 6)
FAILED_SEED = ("adam", 8, 2)  # (optimizer, trial, seed)
START = 1_700_000_000.0


def draws(optimizer: str) -> list[tuple[float, float]]:
    """(learning rate, weight decay) of each trial, in trial order."""
    rng = random.Random(f"{STUDY}-{optimizer}")
    return [(round(10 ** rng.uniform(-4, 0), 8), round(rng.uniform(0, 0.1), 6)) for _ in range(TRIALS)]


def val_acc(optimizer: str, lr: float, wd: float, seed: int) -> float:
    """Best near lr 1e-2 (adam) or 1e-1 (sgd), falling off quadratically in log10(lr)."""
    centre = -2 if optimizer == "adam" else -1
    return round(0.95 - 0.08 * (math.log10(lr) - centre) ** 2 - wd / 10 + seed / 1000, 6)


def test_acc(optimizer: str, lr: float, wd: float, seed: int) -> float:
    return round(val_acc(optimizer, lr, wd, seed) - 0.01 + wd / 20, 6)


def state(optimizer: str, trial: int, seed: int) -> str:
    if (optimizer, trial) == PRUNED:
        return "pruned"
    if (optimizer, trial) == DIVERGED:
        return "diverged"
    return "failed" if (optimizer, trial, seed) == FAILED_SEED else "done"


def config(task: str, optimizer: str, lr: float, wd: float, seed: int, trial: int | None) -> dict:
    return {
        "task": {"name": task, "batch_size": 32, "target_metric": "val_acc", "target_metric_mode": "max"},
        "optimizer": {"name": optimizer, "learning_rate": lr, "weight_decay": wd},
        "engine": {"seed": seed, "output_dir": "ignored", "plugin_paths": []},
        "evaluation": {"checkpoint": "best", "target": None, "plot": {
            "metric": "test_acc", "test_metric_mode": "max", "format": ".3f", "limits": None,
            "x": "optimizer.learning_rate", "y": "optimizer.weight_decay"}},
        **({"search": {"study": STUDY, "strategy": "random", "trial": trial}} if trial is not None else {}),
    }


def write_run(output: Path, task: str, optimizer: str, lr: float, wd: float, seed: int, trial: int | None,
              run_state: str = "done", started: float = START) -> Path:
    run_id = hashlib.sha256(f"{task}{optimizer}{lr}{wd}{seed}".encode()).hexdigest()[:12]
    run_dir = output / task / optimizer / run_id
    write_config(run_dir, config(task, optimizer, lr, wd, seed, trial))
    if run_state in ("done", "pruned"):  # a pruned trial may have scored before it was stopped
        val = 0.999 if run_state == "pruned" else val_acc(optimizer, lr, wd, seed)
        write_scores(run_dir, {"best": {"val_acc": val, "test_acc": 0.999 if run_state == "pruned"
                                        else test_acc(optimizer, lr, wd, seed)}})
    errors = {"done": {}, "pruned": {"error": None}}
    write_status(run_dir, run_state, started=started, **errors.get(run_state, {"error": f"{run_state} on purpose"}))
    return run_dir


def write_search(output: Path) -> Path:
    for optimizer in OPTIMIZERS:
        for trial, (lr, wd) in enumerate(draws(optimizer)):
            for seed in SEEDS:
                # started in the reverse of the trial order: the trial number, not the clock, orders them
                write_run(output, "toy", optimizer, lr, wd, seed, trial, state(optimizer, trial, seed),
                          started=START + 100 * (TRIALS - trial) + seed)
    return output


def write_grid(output: Path, task: str = "grid", optimizers: tuple[str, ...] = OPTIMIZERS,
               lrs: tuple[float, ...] = (1e-3, 1e-2), wds: tuple[float, ...] = (0.0, 0.01)) -> Path:
    for optimizer in optimizers:
        for lr in lrs:
            for wd in wds:
                for seed in SEEDS:
                    write_run(output, task, optimizer, lr, wd, seed, None)
    return output


def expected_best(optimizer: str) -> tuple[int, float]:
    """(trial, validation seed mean) of the optimizer's best trial by hand: every seed done, not pruned."""
    means = {}
    for trial, (lr, wd) in enumerate(draws(optimizer)):
        if all(state(optimizer, trial, seed) == "done" for seed in SEEDS):
            means[trial] = sum(val_acc(optimizer, lr, wd, seed) for seed in SEEDS) / len(SEEDS)
    trial = max(means, key=means.get)
    return trial, means[trial]
