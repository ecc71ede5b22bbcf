"""Time to target: how many steps each optimizer needs until `task.target_metric` reaches the task's
`evaluation.target` (e.g. val_acc >= 0.95), when the task defines one.

    each done run: first validation in logs/metrics.csv at or past the target -> steps
    each configuration: mean over its seeds, only when every seed reached the target (a diverged, failed
        or missing seed did not: docs/protocol.md)
    each optimizer: its fastest configuration

Steps are optimizer steps taken: the logged step of that validation + 1 (Lightning logs the validation
after N steps at step N - 1). Validation runs every `engine.check_val_every_n_epoch` epochs, so the
resolution is one validation interval. Seconds are estimated as steps x the run's measured
`train/step_time_ms` (training only, validation excluded).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.results.figure_files import file_stem, save
from framework.results.run_folder import read_metrics
from framework.results.selection import Configuration, Scoring, label


def steps_to_target(run: dict[str, Any], score: Scoring) -> int | None:
    """Optimizer steps until the run's logged `target_metric` first reached the target; None if never."""
    metric, target = score.target_metric, score.target
    for row in read_metrics(Path(run["run_dir"])):
        value = row.get(metric)
        if value is None or "step" not in row:
            continue
        if (value >= target) if score.target_mode == "max" else (value <= target):
            return int(row["step"]) + 1
    return None


def target_rows(score: Scoring, configs: list[Configuration], keys: list[str]) -> list[dict[str, Any]]:
    """One row per configuration; `fastest` marks each optimizer's fastest configuration that reached it."""
    rows = []
    for config in configs:
        # selection.configurations holds each configuration's runs in seed order already.
        done = [run for run in config.runs if run.get("state") == "done"]
        steps = [steps_to_target(run, score) for run in done]
        reached = [(run, s) for run, s in zip(done, steps) if s is not None]
        every = bool(done) and len(reached) == max(config.n_seeds, config.n_runs)
        seconds = [s * run["train/step_time_ms"] / 1000 for run, s in reached
                   if isinstance(run.get("train/step_time_ms"), (int, float))]
        rows.append({
            "task": score.task, "optimizer": config.optimizer, "configuration": config.label(keys),
            "metric": score.target_metric, "target": score.target,
            "n_runs": config.n_runs, "n_done": len(done), "n_reached": len(reached),
            "steps": sum(s for _, s in reached) / len(reached) if every else None,
            "seconds": sum(seconds) / len(seconds) if every and len(seconds) == len(reached) else None,
            "seed_steps": "; ".join(f"seed {label(run.get('engine.seed'))}: {s if s is not None else 'not reached'}"
                                    for run, s in zip(done, steps)),
            "fastest": False,
        })
    for optimizer in {r["optimizer"] for r in rows}:
        own = [r for r in rows if r["optimizer"] == optimizer and r["steps"] is not None]
        if own:
            min(own, key=lambda r: r["steps"])["fastest"] = True
    return rows


def fastest(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each optimizer's steps to target (its fastest configuration), None when none reached it."""
    result: dict[str, float | None] = {r["optimizer"]: None for r in rows}
    for row in rows:
        if row["fastest"]:
            result[row["optimizer"]] = row["steps"]
    return result


def plot_targets(score: Scoring, rows: list[dict[str, Any]], plot_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Write `<task>_time_to_target.<format>` (a bar per optimizer) and `.csv` (every configuration)."""
    import matplotlib
    import pandas as pd
    from matplotlib.figure import Figure

    stem = file_stem(plot_dir, f"{score.task}_time_to_target")
    optimizers = sorted({r["optimizer"] for r in rows})
    best = {o: next((r for r in rows if r["optimizer"] == o and r["fastest"]), None) for o in optimizers}
    reached = [r["steps"] for r in best.values() if r is not None]
    with matplotlib.rc_context({"text.usetex": False}):
        fig = Figure(figsize=(7.5, 1.2 + 0.55 * len(optimizers)), layout="constrained")
        ax = fig.subplots()
        for i, optimizer in enumerate(optimizers):
            row = best[optimizer]
            if row is None:
                ax.text(0, i, "  target not reached", va="center", fontsize=8, color="0.3")
                continue
            ax.barh(i, row["steps"], color="tab:blue", alpha=0.7)
            ax.text(row["steps"], i, f"  {row['steps']:.0f} steps\n  {row['configuration']}", va="center",
                    fontsize=7)
        ax.set_yticks(range(len(optimizers)), optimizers)
        ax.set_xlim(0, 1.6 * max(reached) if reached else 1)
        ax.set_xlabel("optimizer steps until the target (mean over seeds; fastest configuration)")
        better = ">=" if score.target_mode == "max" else "<="
        ax.set_title(f"{score.task}: steps until {score.target_metric} {better} {score.target:g} (shorter is better)",
                     fontsize=10)
        ax.invert_yaxis()
        paths = save(fig, stem, formats)
    paths.append(stem.with_name(f"{stem.name}.csv"))
    pd.DataFrame(rows).to_csv(paths[-1], index=False)
    return paths
