"""The best-configuration table: per task x optimizer, the configuration with the best seed mean and
its mean, standard deviation and 95 % bootstrap interval over seeds.

    task  optimizer  rank  metric         configuration                   seeds  mean   std    ci_low ci_high
    digits adamw_... 1     best/test_acc  optimizer.learning_rate=0.01... 3/3    0.972  0.004  0.968  0.976

`rank` orders the optimizers of a task by that mean (1 = best, equal means share a rank; none for an
optimizer without a finished run). The configuration is chosen over every hyperparameter, as the heatmap's red box is over its two
axes (selection.best).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.results.selection import Configuration, Scoring, bootstrap_interval, label

TABLE_FILE = "best_configurations.csv"


def best_rows(score: Scoring, best: dict[str, Configuration], keys: list[str]) -> list[dict[str, Any]]:
    """One row per optimizer of one task; `keys` are the hyperparameters that vary within the task."""
    means = [c.mean for c in best.values() if c.mean is not None]
    # Competition ranking: optimizers with equal means share a rank (1, 1, 3), none is first by name.
    rank = {o: 1 + sum((m > c.mean) if score.mode == "max" else (m < c.mean) for m in means)
            for o, c in best.items() if c.mean is not None}
    rows = []
    for optimizer, config in sorted(best.items()):
        interval = bootstrap_interval(config.scores)
        rows.append({
            "task": score.task, "optimizer": optimizer, "rank": rank.get(optimizer),
            "metric": score.column, "mode": score.mode, "configuration": config.label(keys),
            **{key: config.values.get(key) for key in keys},
            "n_done": config.n_done, "n_runs": config.n_runs,
            "mean": config.mean, "std": config.std,
            "ci_low": interval[0] if interval else None, "ci_high": interval[1] if interval else None,
            "scores": "; ".join(f"seed {label(seed)}: {value!r}" for seed, value in zip(config.seeds, config.scores)),
            "states": ";".join(f"{s}={n}" for s, n in sorted(config.states.items())),
        })
    return rows


def write_best(rows: list[dict[str, Any]], plot_dir: Path) -> Path:
    import pandas as pd

    path = plot_dir / TABLE_FILE
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def format_row(row: dict[str, Any], spec: str) -> dict[str, str]:
    """The row's numbers as text for people: `0.972 ± 0.004`, `[0.968, 0.976]`, `3/3`."""
    def number(value: Any) -> str:
        return "-" if value is None else format(value, spec)

    mean = number(row["mean"]) + (f" ± {number(row['std'])}" if row["std"] is not None else "")
    interval = f"[{number(row['ci_low'])}, {number(row['ci_high'])}]" if row["ci_low"] is not None else "-"
    return {
        "task": row["task"], "optimizer": row["optimizer"], "rank": "-" if row["rank"] is None else str(row["rank"]),
        "metric": row["metric"], "configuration": row["configuration"], "seeds": f"{row['n_done']}/{row['n_runs']}",
        "mean ± std": mean, "95% CI": interval,
    }
