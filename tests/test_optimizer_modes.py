# python -m pytest tests/test_optimizer_modes.py   (slow: real schedule-free fits on digits, about 30 s)
"""The engine switches schedule-free optimizers between train and eval mode: the scores it records are
those of the averaged (eval) weights, its checkpoints hold them, and a resumed run continues exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from torch.nn import functional as F

from framework.config import parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.results.run_folder import read_scores

pytestmark = pytest.mark.slow
REGISTRY = Registry()


def schedulefree_run(output: Path, epochs: int):
    (spec,) = expand(parse_overrides([
        "tasks=digits", "optimizers=adamw_schedulefree", f"task.max_epochs={epochs}", f"engine.output_dir={output}",
    ]), REGISTRY)
    return spec


def scores_by_hand(model, datamodule) -> dict[str, float]:
    """Test loss and accuracy of the model's current weights, computed by hand."""
    features, targets = datamodule.data_test.tensors
    model.eval()
    with torch.no_grad():
        logits = model(features)
    return {"test_loss": F.cross_entropy(logits, targets).item(), "test_acc": (logits.argmax(1) == targets).float().mean().item()}


def test_recorded_scores_are_those_of_the_model_after_optimizer_eval(tmp_path):
    from framework.training.run import build, execute

    spec = schedulefree_run(tmp_path / "engine", epochs=3)
    outcome = execute(spec, REGISTRY)
    assert outcome.state == "done", outcome.error
    recorded = outcome.scores["last"]

    # The same seeded run again by hand, to reach its optimizer after training.
    model, datamodule, trainer, _, _ = build(spec, REGISTRY, tmp_path / "by_hand")
    trainer.fit(model, datamodule=datamodule)
    (optimizer,) = trainer.optimizers
    optimizer.train()  # the parameters hold y, where the gradients were taken
    at_y = scores_by_hand(model, datamodule)
    optimizer.eval()  # the parameters hold x, the average
    at_x = scores_by_hand(model, datamodule)

    assert at_x["test_acc"] == recorded["test_acc"]
    assert at_x["test_loss"] == pytest.approx(recorded["test_loss"], rel=1e-5)
    assert at_y["test_loss"] != pytest.approx(recorded["test_loss"], rel=1e-3)  # so the switch matters here

    # The last checkpoint holds x with an optimizer state that says eval mode, and the run's end state.
    checkpoint = torch.load(spec.run_dir(tmp_path / "engine") / "checkpoints" / "last.ckpt", weights_only=False)
    assert [g["train_mode"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == [False] * len(optimizer.param_groups)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(checkpoint["state_dict"][name], value, rtol=1e-5, atol=1e-6)


class StopAtEpoch(Callback):
    """A crash at the start of an epoch, after the previous epoch's checkpoint was written."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"stopped at epoch {self.epoch}")


def test_a_resumed_run_continues_exactly(tmp_path):
    from framework.training.run import build, execute

    reference = schedulefree_run(tmp_path / "reference", epochs=4)
    assert execute(reference, REGISTRY).state == "done"

    spec = schedulefree_run(tmp_path / "resumed", epochs=4)
    run_dir = spec.run_dir(tmp_path / "resumed")
    model, datamodule, trainer, _, _ = build(spec, REGISTRY, run_dir)
    trainer.callbacks.append(StopAtEpoch(2))
    with pytest.raises(RuntimeError, match="stopped at epoch 2"):
        trainer.fit(model, datamodule=datamodule)
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1

    outcome = execute(spec, REGISTRY)  # the engine finds last.ckpt and resumes from it
    assert outcome.state == "done", outcome.error

    def without_timing(directory: Path) -> str:
        scores = read_scores(directory)
        scores.pop("train")
        return json.dumps(scores, sort_keys=True)

    assert without_timing(run_dir) == without_timing(reference.run_dir(tmp_path / "reference"))
    ours = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    theirs = torch.load(reference.run_dir(tmp_path / "reference") / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)
