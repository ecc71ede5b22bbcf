"""Predict with a trained run (`framework predict`): its model on new input files, predictions written in
the standard formats of its task.

The run is rebuilt as `framework evaluate` rebuilds it (evaluate.py): the resolved config saved in the
checkpoint (or its run folder) names the task, the task is built from it, and the weights are loaded
with `weights_only=True`, so nothing in a checkpoint file can run code. The class names saved with the
checkpoint replace the data module's (`TaskModel.on_load_checkpoint`).

What to read and what to write belongs to the task, through two optional members of TaskModel:

    predict_suffixes: tuple[str, ...]                                 # file types a folder or glob yields
    predict_files(files, output, datamodule) -> list[Path]            # writes predictions, returns the files

The engine expands the inputs, calls the hook in eval mode under torch.no_grad(), and reports.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from framework.config import Node
from framework.errors import FrameworkError
from framework.results import run_folder
from framework.training.evaluate import checkpoint_config, find_checkpoints, read_checkpoint

_GLOB_CHARACTERS = set("*?[")


def choose_checkpoint(path: str | Path, which: str = "best") -> tuple[Path, Path | None]:
    """(checkpoint, run dir) to predict with: a .ckpt file as given, or the `which` checkpoint of a run
    directory whose run finished (a running or failed run has no final weights yet)."""
    path = Path(path)
    if not path.exists():
        raise FrameworkError(f"{path}: no such run directory or checkpoint file; give "
                             f"<output>/<task>/<optimizer>/<run_id> or a .ckpt file")
    if path.is_dir() and (path / run_folder.CONFIG_FILE).is_file():
        state = (run_folder.read_status(path) or {}).get("state", "unknown")
        if state != "done":
            raise FrameworkError(f"{path}: the run has not finished (state: {state}); wait for it (framework "
                                 f"status), or give one of its checkpoint files to predict with it anyway")
    if path.is_dir() and which == "best" and not any(run_folder.checkpoint_dir(path).glob("best-*.ckpt")):
        which = "last"  # no best checkpoint (the target metric was never finite): the run tested last as best
    ((checkpoint, _, run_dir),) = find_checkpoints(path, (which,))
    return checkpoint, run_dir


def expand_inputs(inputs: list[str], suffixes: tuple[str, ...], task: str) -> list[Path]:
    """The input files: each argument a file, a folder (its files with one of `suffixes`, not recursing)
    or a glob pattern. Every argument must yield at least one file."""
    files: list[Path] = []
    wanted = {suffix.lower() for suffix in suffixes}
    for argument in inputs:
        path = Path(argument).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in wanted)
            if not found:
                raise FrameworkError(f"{path}: no {'/'.join(sorted(wanted))} files in this folder for task '{task}'")
        elif _GLOB_CHARACTERS & set(argument) and not path.exists():
            found = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
            if not found:
                raise FrameworkError(f"{argument}: the pattern matches no file")
        elif path.is_file():
            found = [path]
        else:
            raise FrameworkError(f"{path}: no such input file or folder")
        files.extend(found)
    return list(dict.fromkeys(files))  # a file named twice (a folder and a glob) is predicted once


def load_trained(checkpoint_path: Path, run_dir: Path | None, plugin_paths: list[str] = (),
                 device: str = "cpu") -> tuple[Any, Any]:
    """(model, data module) of the checkpoint's task with its trained weights, in eval mode on `device`."""
    from framework.config.registry import Registry
    from framework.training.run import load_task, quiet_lightning

    quiet_lightning()
    checkpoint = read_checkpoint(checkpoint_path)
    config = Node(checkpoint_config(checkpoint_path, run_dir, checkpoint))
    model, datamodule = load_task(config, Registry([*plugin_paths, *config.engine.plugin_paths]))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise FrameworkError(f"{checkpoint_path}: its weights do not fit the task '{config.task.name}' as built "
                             f"now ({first}); was the task's code or data changed since it trained?") from None
    model.on_load_checkpoint(checkpoint)  # the class names it trained with
    return model.eval().to(device), datamodule


def has_predict_hook(model: Any) -> bool:
    from framework.training.task import TaskModel

    return type(model).predict_files is not TaskModel.predict_files


def predict(path: str | Path, inputs: list[str], output: Path, which: str = "best",
            plugin_paths: list[str] = (), device: str | None = None) -> list[Path]:
    """Predict on `inputs` with the run or checkpoint at `path`; the files written under `output`."""
    import torch

    checkpoint, run_dir = choose_checkpoint(path, which)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, datamodule = load_trained(checkpoint, run_dir, plugin_paths, device)
    task = model.config.task.name
    if not has_predict_hook(model):
        raise FrameworkError(f"task '{task}' has no prediction hook: define {type(model).__name__}.predict_files "
                             f"and predict_suffixes (docs/predict.md)")
    files = expand_inputs(inputs, tuple(model.predict_suffixes), task)
    output.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        return list(model.predict_files(files, output, datamodule))


def top_k_columns(probabilities: Any, class_names: list[str], k: int = 5, prefix: str = "") -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the `k` most probable classes of each row of `probabilities` [N, C]:
    `{prefix}label_1, {prefix}score_1, ..., {prefix}label_k, {prefix}score_k`, best first."""
    k = min(k, probabilities.shape[1])
    scores, labels = probabilities.float().topk(k, dim=1)
    header = [f"{prefix}{name}_{rank}" for rank in range(1, k + 1) for name in ("label", "score")]
    rows = [[value for label, score in zip(row_labels, row_scores) for value in (class_names[label], f"{score:.6f}")]
            for row_labels, row_scores in zip(labels.tolist(), scores.tolist())]
    return header, rows


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
