"""The run directory: one folder per run that describes itself.

    <output>/<task>/<optimizer>/<run_id>/
        config.yaml      the resolved configuration (and config.json, the same for fast loading)
        status.json      state (pending / running / requeued / done / failed / diverged), error and
                         traceback, timings, SLURM job id
        scores.json      {"best": {val_*, test_*}, "last": {...}, "train": {...}}
        job.json         the SLURM job of the latest submission (slurm executor)
        checkpoints/     best-*.ckpt and last.ckpt
        logs/            Lightning's CSV logs (metrics.csv)
        tensorboard/     TensorBoard's events (engine.loggers with tensorboard); wandb/: wandb's files
        loggers.json     the MLflow and wandb run ids a resumed attempt continues
        figures/         pictures the task drew of a tested checkpoint: figures/best/, figures/last/

Every file is written atomically, so a killed process leaves the old file or the new one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from framework.config import flatten
from framework.config.file_io import atomic_write_json, atomic_write_text, dump_yaml, load_yaml, read_json

STATES = ("pending", "running", "requeued", "done", "failed", "diverged", "pruned")  # pending/requeued: SLURM
FINISHED = ("done", "diverged", "pruned")  # outcomes that are results: never redone without --force (pruned: a
# search trial its pruner stopped, docs/search.md)
CONFIG_FILE, STATUS_FILE, SCORES_FILE, JOB_FILE = "config.yaml", "status.json", "scores.json", "job.json"
CONFIG_JSON = "config.json"  # the same configuration, for fast loading
LOCK_FILE = ".lock"  # held while a process trains the run (training/run_lock.py)
FIGURES_DIR = "figures"  # <run dir>/figures/<best|last>/<name>.png (+ <name>.txt, its caption): TaskModel.save_figure


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def last_checkpoint(run_dir: Path) -> Path | None:
    path = checkpoint_dir(run_dir) / "last.ckpt"
    return path if path.is_file() else None


def figures_dir(run_dir: Path, checkpoint: str) -> Path:
    """Where a task's pictures of the `checkpoint` ("best" or "last") checkpoint go."""
    return run_dir / FIGURES_DIR / checkpoint


def read_figures(run_dir: Path, checkpoint: str) -> list[tuple[Path, str]]:
    """(PNG, caption) for each picture the task drew of `checkpoint`, by name; the caption is the
    `<name>.txt` beside it, else the name. The folder is named after the file tested: when best and last
    are one checkpoint (a run that saved no best-*.ckpt of its own tests last.ckpt as its best; a best
    tested once for both) only one folder exists, and it serves for both."""
    other = "best" if checkpoint == "last" else "last"
    folder = next((f for f in (figures_dir(run_dir, checkpoint), figures_dir(run_dir, other)) if f.is_dir()), None)
    if folder is None:
        return []
    figures = []
    for png in sorted(folder.glob("*.png")):
        caption = png.with_suffix(".txt")
        figures.append((png, caption.read_text(encoding="utf-8").strip() if caption.is_file() else png.stem))
    return figures


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """config.yaml for people, and the same as config.json for loaders: reading JSON is an order of
    magnitude faster than YAML, which is most of the time of loading 10,000 runs."""
    atomic_write_json(run_dir / CONFIG_JSON, config)
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def read_config(run_dir: Path) -> dict[str, Any]:
    try:
        return read_json(run_dir / CONFIG_JSON)
    except (OSError, json.JSONDecodeError):  # written before config.json existed, or edited by hand
        return load_yaml(run_dir / CONFIG_FILE)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(run_dir / STATUS_FILE)
    except (OSError, json.JSONDecodeError):
        return None


def write_status(run_dir: Path, state: str, **fields: Any) -> dict[str, Any]:
    """Record the run's state; keeps the fields of the previous status that are not replaced."""
    assert state in STATES, state
    status = read_status(run_dir) or {}
    status.update(fields)
    status.update(state=state, updated=time.time(), host=socket.gethostname(), pid=os.getpid())
    if state == "running":
        status.pop("error", None)
        status.pop("traceback", None)
    atomic_write_json(run_dir / STATUS_FILE, status)
    return status


def clear_run_dir(run_dir: Path) -> None:
    """--force: remove what an earlier attempt left, but not the lock, which the caller holds."""
    import shutil

    for entry in run_dir.iterdir():
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def write_job(run_dir: Path, job_id: str, folder: str | Path) -> None:
    """The SLURM job that owns the run, written by the submitter (status.json is the job's to write)."""
    atomic_write_json(run_dir / JOB_FILE, {"job_id": job_id, "slurm_folder": str(folder), "submitted": time.time()})


def read_status_and_job(run_dir: Path) -> dict[str, Any]:
    """status.json with the job id of the latest submission (job.json) when status.json has none newer."""
    status = read_status(run_dir) or {}
    try:
        job = read_json(run_dir / JOB_FILE)
    except (OSError, json.JSONDecodeError):
        return status
    if status.get("state") in ("pending", "requeued") or not status.get("job_id"):
        status = {**status, "job_id": job["job_id"]}
    return {"slurm_folder": job.get("slurm_folder"), **status}


def read_scores(run_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(run_dir / SCORES_FILE)
    except (OSError, json.JSONDecodeError):
        return None


def write_scores(run_dir: Path, scores: dict[str, Any]) -> None:
    atomic_write_json(run_dir / SCORES_FILE, scores)


def iter_run_dirs(output_dir: str | Path) -> Iterator[Path]:
    """Every run directory under `output_dir` (<task>/<optimizer>/<run_id>/ holding a config)."""
    for config in sorted(Path(output_dir).glob(f"*/*/*/{CONFIG_FILE}")):
        yield config.parent


def load_runs(output_dir: str | Path) -> list[dict[str, Any]]:
    """One flat record per run (`read_run`): identity, state, every config key (dotted) and every score
    (`best/test_acc`, `last/val_loss`, `train/time_s`)."""
    return [read_run(run_dir) for run_dir in iter_run_dirs(output_dir)]


# ---------------------------------------------------------------- environment and learning curves

ENV_FILE, METRICS_FILE = "env.json", "logs/metrics.csv"


def read_environment(run_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(run_dir / ENV_FILE)
    except (OSError, json.JSONDecodeError):
        return None


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The rows Lightning logged during training (logs/metrics.csv), numbers only, empty cells left out.

    After training, each tested checkpoint is validated and tested again at the final step; those rows
    repeat the best or last checkpoint's values at a step the curve never reached, so everything from
    the validation row just before the first `test_*` row on is dropped."""
    import csv

    try:
        with (run_dir / METRICS_FILE).open(newline="") as fh:
            rows = [{k: n for k, v in row.items() if k and (n := _number(v)) is not None} for row in csv.DictReader(fh)]
    except (OSError, csv.Error):
        return []
    first_test = next((i for i, row in enumerate(rows) if any(k.startswith("test_") for k in row)), len(rows))
    end = first_test
    while 0 < end < len(rows) and rows[end - 1].get("step") == rows[first_test].get("step") \
            and not any(k.startswith("train_") for k in rows[end - 1]):
        end -= 1
    return rows[:end]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


# ---------------------------------------------------------------- loading many runs

def read_run(run_dir: Path) -> dict[str, Any]:
    """One run's flat record (see `load_runs`); a function of its own for loaders that read runs in
    worker processes."""
    config = read_config(run_dir) or {}
    status = read_status(run_dir) or {"state": "unknown"}
    record: dict[str, Any] = {
        "task": run_dir.parent.parent.name,
        "optimizer": run_dir.parent.name,
        "run_id": run_dir.name,
        "state": status.get("state"),
        "error": status.get("error"),
        "run_dir": str(run_dir),
    }
    record.update(flatten({k: v for k, v in config.items() if k != "run"}))
    for checkpoint, values in (read_scores(run_dir) or {}).items():
        if isinstance(values, dict):
            record.update({f"{checkpoint}/{metric}": value for metric, value in values.items()})
    return record


def load_runs_parallel(output_dir: str | Path, workers: int | None = None) -> list[dict[str, Any]]:
    """`load_runs`, with the runs read by worker processes (`read_runs`)."""
    return read_runs(list(iter_run_dirs(output_dir)), workers)


def read_runs(run_dirs: list[Path], workers: int | None = None) -> list[dict[str, Any]]:
    """`read_run` of each directory, in order, by `workers` processes (default: one per CPU this process
    may use, at most one per 500 runs, so below 1,000 runs they are read here: starting processes would
    cost more than it saves). Each run is independent: its config.json (or config.yaml), status.json and
    scores.json."""
    from concurrent.futures import ProcessPoolExecutor

    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = min(cpus, len(run_dirs) // 500)
    workers = max(1, min(workers, len(run_dirs)))
    if workers == 1:
        return [read_run(run_dir) for run_dir in run_dirs]
    size = -(-len(run_dirs) // workers)
    with ProcessPoolExecutor(workers) as pool:  # contiguous chunks, concatenated in order
        parts = pool.map(_read_runs, [run_dirs[i:i + size] for i in range(0, len(run_dirs), size)])
        return [record for part in parts for record in part]


def _read_runs(run_dirs: list[Path]) -> list[dict[str, Any]]:
    return [read_run(run_dir) for run_dir in run_dirs]
