"""Pictures a task drew of its own runs (a confusion matrix, predicted masks), shown next to the plots.

A run's task saves them at test time with `TaskModel.save_figure` into `<run dir>/figures/<best|last>/`
(run_folder.read_figures); this module only collects them, so results never imports a task. For each
optimizer's configuration chosen on the validation metric (docs/protocol.md), the pictures of its
finished run with the lowest seed, of the checkpoint the plots report (`evaluation.checkpoint`), are
copied into the plot folder as `<task>_<optimizer>_<name>.png`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.results.figure_files import file_stem
from framework.results.run_folder import read_figures
from framework.results.selection import SEED, Configuration, label, sort_key


@dataclass(frozen=True)
class TaskPicture:
    path: Path  # the copy in the plot folder
    caption: str  # what the task says the picture shows, with the run it comes from


def collect_pictures(task: str, chosen: dict[str, Configuration], plot_dir: Path) -> list[TaskPicture]:
    """Copy the pictures of each chosen configuration's first finished seed into `plot_dir`."""
    pictures = []
    for optimizer, config in sorted(chosen.items()):
        run = _first_finished(config.runs)
        if run is None:
            continue
        checkpoint = str(run.get("evaluation.checkpoint") or "best")
        for source, caption in read_figures(Path(run["run_dir"]), checkpoint):
            target = file_stem(plot_dir, f"{task}_{optimizer}_{source.name}")
            shutil.copyfile(source, target)
            where = f"{task}, {optimizer}, {SEED}={label(run.get(SEED))}, {checkpoint} checkpoint, run {run['run_id']}"
            pictures.append(TaskPicture(target, f"{caption} ({where})"))
    return pictures


def _first_finished(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [run for run in runs if run.get("state") == "done"]
    return min(done, key=lambda run: sort_key(run.get(SEED)), default=None)
