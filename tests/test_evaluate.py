# python -m pytest tests/test_evaluate.py   (slow: a real digits fit, then `framework evaluate` on it)
"""Checkpoints describe themselves and load safely; `framework evaluate` rebuilds the task from a checkpoint
and reproduces the scores its run saved, saves activations on request, and refuses unsafe checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from framework.errors import FrameworkError
from framework.training.evaluate import evaluate, find_checkpoints, read_checkpoint

from .cells import run_cell, status_and_scores
from .conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    spec, outcome, run_dir = run_cell(root / "results", "tasks=digits", "task.max_epochs=3", "task.dropout=0.1")
    assert outcome.state == "done", outcome.error
    return spec, run_dir


def test_checkpoints_keep_config_optimizer_hyperparameters_and_class_names(trained):
    spec, run_dir = trained
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)  # safe loading works
    meta = checkpoint["framework"]
    assert meta["task"] == "digits" and meta["optimizer"] == "adamw_baseline" and meta["run_id"] == spec.run_id
    assert {k: v for k, v in meta["config"].items() if k != "run"} == spec.config
    assert meta["optimizer_hyperparameters"] == spec.config["optimizer"]
    assert meta["class_names"] == [str(d) for d in range(10)]


def test_evaluate_reproduces_the_saved_scores(trained, tmp_path):
    _, run_dir = trained
    proc = run_cli("evaluate", str(run_dir), "--activations", str(tmp_path / "acts.pt"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("reproduced: every saved score within 1e-06") == 2  # best and last
    saved = status_and_scores(run_dir)[1]
    for which in ("best", "last"):
        ((path, name, where),) = find_checkpoints(run_dir, (which,))
        result = evaluate(path, name, where)
        assert result.scores == saved[which]  # bit for bit on the same machine
    activations = torch.load(tmp_path / "acts.best.pt", weights_only=True)
    assert {k: tuple(v.shape) for k, v in activations.items()} == {
        "features": (64, 128), "logits": (64, 10), "probabilities": (64, 10)}
    assert torch.allclose(activations["probabilities"].sum(1), torch.ones(64))


def test_a_checkpoint_file_alone_and_a_changed_score(trained, tmp_path):
    _, run_dir = trained
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "status.json"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    (copy / "checkpoints" / "last.ckpt").write_bytes((run_dir / "checkpoints" / "last.ckpt").read_bytes())
    scores = json.loads((run_dir / "scores.json").read_text())
    scores["last"]["test_acc"] += 0.01  # as if the run had reported another score
    (copy / "scores.json").write_text(json.dumps(scores))
    proc = run_cli("evaluate", str(copy / "checkpoints" / "last.ckpt"), cwd=tmp_path)
    assert proc.returncode == 1 and "NOT reproduced" in proc.stderr
    assert "test_acc" in proc.stdout and "0.01" in proc.stdout


def test_unsafe_checkpoint_is_refused(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "payload": FrameworkError("an arbitrary object")}, path)
    with pytest.raises(FrameworkError, match=r"unsafe.ckpt: holds objects other than tensors and plain values"):
        read_checkpoint(path)
    proc = run_cli("evaluate", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert proc.returncode == 2 and "neither a checkpoint file nor a run directory" in proc.stderr
