"""Test a saved checkpoint again (`framework evaluate`) and compare with the scores its run saved.

A checkpoint describes itself (callbacks.CheckpointMetadata): its resolved config names the task and the
optimizer, so the task is rebuilt exactly as it trained, then validated and tested on the run's own
validation and test data with the checkpoint's weights, as the run did after training. Checkpoints are
loaded with `weights_only=True`: tensors and plain values only, nothing in the file can run code.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config import Node
from framework.errors import FrameworkError
from framework.results import run_folder

WHICH = ("best", "last")


@dataclass
class Evaluation:
    checkpoint: Path
    which: str  # best, last, or the file's name for another checkpoint
    run_dir: Path | None
    scores: dict[str, float] = field(default_factory=dict)
    saved: dict[str, Any] | None = None  # the scores the run saved for this checkpoint, if any
    notes: list[str] = field(default_factory=list)

    def differences(self) -> dict[str, tuple[float, float, float]]:
        """metric -> (saved, now, |difference|) for every metric both have."""
        rows = {}
        for metric, now in self.scores.items():
            before = (self.saved or {}).get(metric)
            if isinstance(before, (int, float)) and isinstance(now, (int, float)):
                rows[metric] = (float(before), float(now), abs(float(now) - float(before)))
        return rows

    def reproduced(self, tolerance: float) -> bool | None:
        """Whether every saved score came out again within `tolerance`; None when nothing was saved."""
        rows = self.differences()
        return all(diff <= tolerance for _, _, diff in rows.values()) if rows else None


def _which(path: Path) -> str:
    if path.name == "last.ckpt":
        return "last"
    return "best" if path.name.startswith("best-") else path.name


def find_checkpoints(path: str | Path, which: tuple[str, ...] = WHICH) -> list[tuple[Path, str, Path | None]]:
    """(checkpoint, which, run dir) for a checkpoint file or for the `which` checkpoints of a run directory."""
    path = Path(path)
    if path.is_file():
        run_dir = path.parent.parent
        return [(path, _which(path), run_dir if (run_dir / run_folder.CONFIG_FILE).is_file() else None)]
    if not (path / run_folder.CONFIG_FILE).is_file():
        raise FrameworkError(f"{path}: neither a checkpoint file nor a run directory (no {run_folder.CONFIG_FILE}); "
                             f"give <output>/<task>/<optimizer>/<run_id> or a .ckpt file")
    found = []
    saved = run_folder.read_scores(path) or {}
    for name in which:
        if name == "last":
            candidates = [run_folder.checkpoint_dir(path) / "last.ckpt"]
        else:
            candidates = sorted(run_folder.checkpoint_dir(path).glob("best-*.ckpt"))
            step = saved.get("best", {}).get("step")
            candidates = [c for c in candidates if step is None or f"step={step}." in c.name] or candidates
        candidates = [c for c in candidates if c.is_file()]
        if not candidates:
            raise FrameworkError(f"{path}: no {name} checkpoint in {run_folder.checkpoint_dir(path)} (has the run trained?)")
        found.append((candidates[-1], name, path))
    return found


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's contents, loaded safely (weights_only) and memory-mapped."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0]
        raise FrameworkError(
            f"{path}: holds objects other than tensors and plain values, which safe loading (weights_only=True) "
            f"refuses ({first}); save only plain values in checkpoints"
        ) from None
    except (OSError, RuntimeError) as exc:
        raise FrameworkError(f"{path}: cannot read the checkpoint ({exc}); is it complete?") from None


def checkpoint_config(path: Path, run_dir: Path | None, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The run's resolved config: from the checkpoint, or from its run directory for older checkpoints."""
    meta = checkpoint.get("framework") or {}
    if meta.get("config"):
        return meta["config"]
    if run_dir is not None:
        return {**run_folder.read_config(run_dir), "run": {"id": run_dir.name, "dir": str(run_dir)}}
    raise FrameworkError(f"{path}: the checkpoint holds no config and lies in no run directory; "
                         f"evaluate it from its run directory")


def evaluate(path: Path, which: str, run_dir: Path | None, plugin_paths: list[str] = (),
             accelerator: str | None = None, activations: Path | None = None) -> Evaluation:
    """Validate and test one checkpoint as its run did; optionally save its activations of the first
    test batch (`TaskModel.activations`) to `activations` (a file torch.load reads with weights_only)."""
    import lightning.pytorch as pl
    import torch

    from framework.config.registry import Registry
    from framework.training.run import load_task, quiet_lightning, score_checkpoint
    from framework.training.trainer_options import trainer_arguments

    quiet_lightning()
    # Lightning asks for the training callbacks whose states a checkpoint holds; scoring needs none of them
    warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided.*")
    checkpoint = read_checkpoint(path)
    config = Node(checkpoint_config(path, run_dir, checkpoint))
    meta = checkpoint.get("framework") or {}
    del checkpoint
    registry = Registry([*plugin_paths, *config.engine.plugin_paths])
    model, datamodule = load_task(config, registry)
    options = trainer_arguments(config.engine)
    options.update(devices=1, num_nodes=1)  # one device suffices to score a checkpoint, and keeps the scores' reduction simple
    if accelerator:
        options.update(accelerator=accelerator)
    trainer = pl.Trainer(**options, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=path.parent)
    result = Evaluation(path, which, run_dir)
    result.scores = score_checkpoint(trainer, model, datamodule, str(path))
    if run_dir is not None:
        result.saved = (run_folder.read_scores(run_dir) or {}).get(which)
    names = datamodule.class_names if hasattr(datamodule, "class_names") else None
    saved_names = meta.get("class_names")
    if saved_names is not None and names is not None and [str(n) for n in names] != list(saved_names):
        result.notes.append(f"class names differ from the checkpoint's: now {list(names)[:5]}..., saved {saved_names[:5]}...")
    if activations is not None:
        from framework.training.activations import batch_activations

        batch = next(iter(datamodule.test_dataloader()))
        values = batch_activations(model, batch)
        activations.parent.mkdir(parents=True, exist_ok=True)
        torch.save(values, activations)
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in values.items())
        result.notes.append(f"activations of the first test batch -> {activations} ({shapes})")
    return result

