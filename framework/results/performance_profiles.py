"""Performance profiles across tasks (Dolan and Moré; the AlgoPerf benchmark scores optimizers this way).

For each task, each optimizer's result is compared with the best optimizer's on that task as a ratio
r >= 1; an optimizer's profile rho(tau) is the share of tasks on which r <= tau. rho(1) is the share of
tasks it wins; the higher and further left its curve, the better. Two measures:

- `score`: the best configuration's seed mean of the task's score. Lower is better (min): r = value /
  best; higher is better (max): r = best / value. Both need positive values; a task with a score <= 0 is
  left out of this profile (and named in the notes).
- `steps to target` (tasks that define `evaluation.target`): r = steps / fewest steps.

An optimizer with no result on a task (nothing finished, target never reached) has r = infinity there:
its curve never counts that task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.results.figure_files import file_stem, save

SCORE, STEPS = "score", "steps to target"
PROFILE_STEM = "performance_profile"
MAX_TAU = 4.0  # the right end of the x axis unless a finite ratio is larger (AlgoPerf uses 4)


def ratios(measure: str, task: str, values: dict[str, float | None], mode: str) -> tuple[list[dict[str, Any]], str | None]:
    """One row per optimizer of one task (`mode` min: lower values are better); or no rows and the reason
    the task is left out."""
    finite = {o: v for o, v in values.items() if v is not None and math.isfinite(v)}
    if finite and min(finite.values()) <= 0:
        return [], f"{measure}: task '{task}' left out (a value <= 0 has no ratio)"
    best = (min if mode == "min" else max)(finite.values()) if finite else None
    rows = []
    for optimizer, value in sorted(values.items()):
        if optimizer not in finite or best is None:
            ratio = math.inf
        else:
            ratio = value / best if mode == "min" else best / value
        rows.append({"measure": measure, "task": task, "optimizer": optimizer, "value": value, "best": best,
                     "ratio": ratio})
    return rows, None


def share_within(rows: list[dict[str, Any]], optimizer: str, tau: float) -> float:
    """rho(tau): the share of the measure's tasks on which `optimizer`'s ratio is at most tau. A task
    where the optimizer has no row counts as not within."""
    tasks = {r["task"] for r in rows}
    within = sum(1 for r in rows if r["optimizer"] == optimizer and r["ratio"] <= tau)
    return within / len(tasks) if tasks else 0.0


def plot_profiles(rows: list[dict[str, Any]], plot_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Write `performance_profile.<format>` (one panel per measure) and `.csv` (the ratios)."""
    import matplotlib
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    measures = [m for m in (SCORE, STEPS) if any(r["measure"] == m for r in rows)]
    optimizers = sorted({r["optimizer"] for r in rows})
    colours = matplotlib.colormaps["tab10"]
    stem = file_stem(plot_dir, PROFILE_STEM)
    with matplotlib.rc_context({"text.usetex": False}):
        fig = Figure(figsize=(5.2 * len(measures), 3.8), layout="constrained")
        axes = fig.subplots(1, len(measures), squeeze=False)[0]
        for ax, measure in zip(axes, measures):
            own = [r for r in rows if r["measure"] == measure]
            finite = [r["ratio"] for r in own if math.isfinite(r["ratio"])]
            high = max(MAX_TAU, 1.05 * max(finite, default=1.0))
            taus = np.unique(np.concatenate([np.geomspace(1.0, high, 400), finite]))
            for i, optimizer in enumerate(optimizers):
                shares = [share_within(own, optimizer, tau) for tau in taus]
                ax.step(taus, shares, where="post", color=colours(i % 10), label=optimizer, linewidth=1.6)
            tasks = len({r["task"] for r in own})
            ax.set_xscale("log")
            ax.set_xlim(1.0, high)
            ticks = [t for t in (1, 1.25, 1.5, 2, 3, 4, 6, 8, 16, 32, 64) if t <= high]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("tau: within this factor of the best optimizer")
            ax.set_ylabel(f"share of tasks ({tasks} task{'s' if tasks != 1 else ''})")
            ax.set_title(f"performance profile: {measure}", fontsize=10)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8, loc="lower right")
        paths = save(fig, stem, formats)
    paths.append(stem.with_name(f"{stem.name}.csv"))
    pd.DataFrame(rows).to_csv(paths[-1], index=False)
    return paths
