"""The loggers a run writes to besides logs/metrics.csv (engine.loggers): TensorBoard, MLflow and
Weights & Biases, through Lightning's own loggers.

Each receives the training and validation metrics as Lightning logs them, the run's resolved
configuration as hyperparameters (dotted keys: optimizer.learning_rate) and, at the end, the scores
written to scores.json under the names of the results table (best/test_acc, last/val_loss,
train/samples_per_s), logged at the run's last step. TensorBoard takes the hyperparameters at the
end, with the scores, so that its HParams tab shows them side by side; MLflow and wandb take them
when the run starts, so that a run in progress shows them.

A resumed attempt continues the logger runs of the attempt it resumes: TensorBoard writes into the
run folder's tensorboard/ and hides the events of the steps the attempt redoes (as the CSV logger
drops their rows); the MLflow run id and the wandb run id are kept in the run folder's loggers.json.
An attempt that starts from scratch (no checkpoint, or --force) starts new logger runs.

Multi-process runs log from rank 0 only: Lightning's loggers write on rank 0 alone, and the logger
runs are created (and loggers.json written) only there.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from framework.config import flatten
from framework.config.file_io import atomic_write_json, read_json
from framework.config.grid import RunSpec

LOGGER_RUNS_FILE = "loggers.json"  # in the run folder: {"mlflow": {"run_id", "tracking_uri"}, "wandb": {"id"}}
TENSORBOARD_DIR = "tensorboard"  # in the run folder; `tensorboard --logdir <output_dir>` shows every run
MLFLOW_STORE = "mlruns"  # in the output folder: the default MLflow store, shared by every run


def _rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def hyperparameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as dotted keys with values every logger takes: numbers, booleans and strings as
    they are; lists, mappings and null as JSON text ([0.9, 0.95], {}, null)."""
    return {key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
            for key, value in flatten(config).items()}


def final_scores(scores: Mapping[str, Any]) -> dict[str, float]:
    """scores.json's numbers under the results table's names: best/test_acc, last/epoch, train/time_s."""
    return {f"{part}/{key}": float(value) for part, values in scores.items() if isinstance(values, Mapping)
            for key, value in values.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}


def _born_after(second: int) -> None:
    """Wait until the clock is past `second`: TensorBoard reads a folder's event files in name order, and a
    name starts with its creation second, then the pid and a per-process counter compared as text ("10"
    sorts before "9"); only a later second puts a new file after an earlier one for sure."""
    while time.time() < second + 1:
        time.sleep(0.05)


def _tensorboard(run_dir: Path, resume_step: int | None) -> tuple[Any, None]:
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(save_dir=run_dir, name=TENSORBOARD_DIR, version="", default_hp_metric=False)
    folder = Path(logger.log_dir)
    earlier = [int(p.name.split(".")[3]) for p in folder.glob("events.out.tfevents.*")] if folder.is_dir() else []
    if _rank_zero() and earlier:
        from torch.utils.tensorboard import SummaryWriter

        # An event file that only says "restarted at step S", written once here (a ddp_spawn run's fit and test
        # processes each open a writer of their own): TensorBoard hides the earlier attempts' events at steps
        # >= S (0: the attempt starts over) when it reads the marker after them and this attempt's files after it.
        _born_after(max(earlier))
        SummaryWriter(str(folder), purge_step=resume_step or 0).close()
        _born_after(int(time.time()))
    return logger, None


def _mlflow_experiment(client: Any, name: str) -> None:
    """Create the experiment unless it exists: two runs starting at once may both try, and one loses."""
    from mlflow.exceptions import MlflowException

    if client.get_experiment_by_name(name) is None:
        try:
            client.create_experiment(name)
        except MlflowException:
            if client.get_experiment_by_name(name) is None:
                raise


def _mlflow(spec: RunSpec, run_dir: Path, stored: Mapping[str, Any]) -> tuple[Any, dict | None]:
    from lightning.pytorch.loggers import MLFlowLogger

    options, engine = spec.config["engine"]["mlflow"], spec.config["engine"]
    uri = options["tracking_uri"] or (Path(engine["output_dir"]).resolve() / MLFLOW_STORE).as_uri()
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 refuses its file store unless asked for it: it is the default here because it needs no
        # server and no database, and each run writes its own folder, which suits many workers at once.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    experiment = options["experiment"] or spec.task
    run_id = stored.get("run_id") if stored.get("tracking_uri") == uri else None
    if _rank_zero():
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        _mlflow_experiment(client, experiment)
        if run_id is not None:
            try:
                client.get_run(run_id)
            except MlflowException:  # the store was moved or cleared: a new MLflow run
                run_id = None
    logger = MLFlowLogger(experiment_name=experiment, run_name=f"{spec.optimizer}/{spec.run_id}", tracking_uri=uri,
                          run_id=run_id, tags={"task": spec.task, "optimizer": spec.optimizer, "run_id": spec.run_id,
                                               "run_dir": str(run_dir.resolve())})
    return logger, ({"run_id": logger.run_id, "tracking_uri": uri} if _rank_zero() else None)


def _wandb(spec: RunSpec, run_dir: Path, stored: Mapping[str, Any]) -> tuple[Any, dict | None]:
    from lightning.pytorch.loggers import WandbLogger

    options = spec.config["engine"]["wandb"]
    wandb_id = stored.get("id") or secrets.token_hex(8)  # ours, not wandb's: known before the run starts
    logger = WandbLogger(
        id=wandb_id, name=f"{spec.optimizer}/{spec.run_id}", project=options["project"] or spec.task,
        entity=options["entity"], save_dir=str(run_dir), mode=options["mode"], tags=[spec.task, spec.optimizer],
        # a grid trains several runs in one process: each is its own wandb run, never the previous one's
        reinit="finish_previous",
        settings={"silent": True},  # the grid prints one line per run; wandb's banners and summaries would drown it
    )
    return logger, {"id": wandb_id}


_BUILDERS = {"mlflow": _mlflow, "wandb": _wandb}


def run_loggers(spec: RunSpec, run_dir: Path, resume_step: int | None) -> list:
    """The loggers engine.loggers names besides csv, continuing the logger runs of the attempt that wrote
    the checkpoint at `resume_step` (None: a fresh attempt, new logger runs, hyperparameters logged now)."""
    names = [name for name in dict.fromkeys(spec.config["engine"]["loggers"]) if name != "csv"]
    if not names:
        return []
    try:
        stored = read_json(run_dir / LOGGER_RUNS_FILE) if resume_step is not None else {}
    except (OSError, ValueError):
        stored = {}
    loggers, records = [], {}
    for name in names:
        if name == "tensorboard":
            logger, record = _tensorboard(run_dir, resume_step)
        else:
            logger, record = _BUILDERS[name](spec, run_dir, stored.get(name) or {})
        loggers.append(logger)
        if record is not None:
            records[name] = record
    if _rank_zero() and records:
        atomic_write_json(run_dir / LOGGER_RUNS_FILE, records)
    if resume_step is None:
        params = hyperparameters(spec.config)
        for logger in loggers:
            if not _is_tensorboard(logger):
                logger.log_hyperparams(params)
    return loggers


def _is_tensorboard(logger: Any) -> bool:
    from lightning.pytorch.loggers import TensorBoardLogger

    return isinstance(logger, TensorBoardLogger)


def log_scores(loggers: list, config: Mapping[str, Any], scores: Mapping[str, Any], step: int) -> None:
    """The run's final scores (scores.json) to each logger at `step`; TensorBoard gets its hyperparameters with them."""
    metrics = final_scores(scores)
    for logger in loggers:
        if _is_tensorboard(logger):
            logger.log_hyperparams(hyperparameters(config), metrics=metrics, step=step)
        else:
            logger.log_metrics(metrics, step=step)


def close_loggers(loggers: list, ok: bool) -> None:
    """Mark each logger run finished (or failed) and flush it. A wandb run is finished outright, else the
    next run of the grid in this process would log into it."""
    if not _rank_zero():
        return
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        experiment = getattr(logger, "_experiment", None) if isinstance(logger, WandbLogger) else None
        if experiment is not None:
            experiment.finish(exit_code=0 if ok else 1)
        else:
            logger.finalize("success" if ok else "failed")


@contextmanager
def logger_runs(spec: RunSpec, run_dir: Path, resume_step: int | None) -> Iterator[list]:
    """`run_loggers` for one attempt, closed when it ends: finished, or failed when it raised (a resumed
    attempt marks them finished in the end)."""
    loggers = run_loggers(spec, run_dir, resume_step)
    try:
        yield loggers
    except BaseException:
        close_loggers(loggers, ok=False)
        raise
    close_loggers(loggers, ok=True)
