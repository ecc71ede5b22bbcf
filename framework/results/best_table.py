"""The best-configuration table: per task x optimizer, the configuration chosen on the validation
metric (selection.pick) and its test score: mean, standard deviation and 95 % Student-t interval of the
mean over seeds.

    task   optimizer rank metric        selected_by  configuration                  seeds  mean   std   ci_low ci_high
    digits adamw_... 1    best/test_acc best/val_acc optimizer.learning_rate=0.01.. 3/3    0.972  0.004 0.962  0.982

`rank` orders the optimizers of a task by that test mean (1 = best, equal means share a rank; a
diverged seed makes the mean the worst there is; none for an optimizer without a finished run). The
configuration is chosen over every hyperparameter, as the heatmap's red box is over its two axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.results.selection import (
    PROTOCOL_VERSION,
    Configuration,
    Scoring,
    label,
    ranked_value,
    t_interval,
)

TABLE_FILE = "best_configurations.csv"


def best_rows(score: Scoring, best: dict[str, Configuration], keys: list[str]) -> list[dict[str, Any]]:
    """One row per optimizer of one task; `keys` are the hyperparameters that vary within the task."""
    values = {o: ranked_value(c, score.mode) for o, c in best.items()}
    means = [v for v in values.values() if v is not None]
    # Competition ranking: optimizers with equal means share a rank (1, 1, 3), none is first by name.
    rank = {o: 1 + sum((m > v) if score.mode == "max" else (m < v) for m in means)
            for o, v in values.items() if v is not None}
    rows = []
    for optimizer, config in sorted(best.items()):
        interval = t_interval(config.scores)
        rows.append({
            "task": score.task, "optimizer": optimizer, "rank": rank.get(optimizer),
            "metric": score.column, "mode": score.mode, "selected_by": score.select_column,
            "select_mode": score.select_mode, "select_mean": config.select_mean,
            "configuration": config.label(keys), **{key: config.values.get(key) for key in keys},
            "n_done": config.n_done, "n_runs": config.n_runs, "n_seeds": max(config.n_seeds, config.n_runs),
            "complete": config.complete, "incomplete_because": config.why_incomplete(),
            "mean": config.mean, "std": config.std,
            "ci_low": interval[0] if interval else None, "ci_high": interval[1] if interval else None,
            "scores": "; ".join(f"seed {label(seed)}: {value!r}" for seed, value in zip(config.seeds, config.scores)),
            "states": ";".join(f"{s}={n}" for s, n in sorted(config.states.items())),
            "protocol": PROTOCOL_VERSION,
        })
    return rows


def write_best(rows: list[dict[str, Any]], plot_dir: Path) -> Path:
    import pandas as pd

    path = plot_dir / TABLE_FILE
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def seeds_text(row: dict[str, Any]) -> str:
    """`3/3`, or `2/3 (1 diverged; incomplete)` for a configuration chosen although seeds are missing."""
    text = f"{row['n_done']}/{row['n_seeds']}"
    if row["complete"]:
        return text
    return f"{text} ({row['incomplete_because'] or 'no score'}; incomplete)"


def format_row(row: dict[str, Any], spec: str) -> dict[str, str]:
    """The row's numbers as text for people: `0.972 ± 0.004`, `[0.962, 0.982]`, `2/3 (1 failed; incomplete)`."""
    def number(value: Any) -> str:
        return "-" if value is None else format(value, spec)

    mean = number(row["mean"]) + (f" ± {number(row['std'])}" if row["std"] is not None else "")
    interval = f"[{number(row['ci_low'])}, {number(row['ci_high'])}]" if row["ci_low"] is not None else "-"
    return {
        "task": row["task"], "optimizer": row["optimizer"], "rank": "-" if row["rank"] is None else str(row["rank"]),
        "metric": row["metric"], "selected by": f"{row['selected_by']} {number(row['select_mean'])}",
        "configuration": row["configuration"], "seeds": seeds_text(row),
        "mean ± std": mean, "95% t-interval": interval,
    }
