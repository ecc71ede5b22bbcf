# python -m pytest tests/test_training_options.py   (the fits are slow: -m "not slow" keeps the checks of values)
"""The engine's training options, each on a real short digits fit through `run.execute`: precision (with
its CPU fallback), gradient accumulation and the batch size rule, gradient clipping by norm and by value,
early stopping, deterministic mode; the optimizer-step timing and the model summary of every run."""

from __future__ import annotations

import re
import warnings

import pytest
import torch

from framework.config import Node, parse_overrides
from framework.config.batch_size import micro_batch_size
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.errors import ConfigError
from framework.results.run_folder import write_status
from framework.training.trainer_options import resolve_precision

from .cells import DIGITS_FAST, run_cell, status_and_scores

# digits with 1,280 training images: 20 full batches of 64, so 2 x 32 accumulated is the same arithmetic
EVEN_SPLIT = ("task.val_fraction=0.1439", "task.test_fraction=0.1442")


# ---------------------------------------------------------------- values, checked before anything runs


def _problems(*overrides: str) -> str:
    with pytest.raises(ConfigError) as caught:
        expand(parse_overrides(["tasks=digits", *overrides]), Registry())
    return str(caught.value)


def test_bad_training_options_are_reported_together():
    text = _problems("engine.precision=fp16", "engine.gradient_clip_algorithm=l2", "engine.early_stopping_patience=-1",
                     "engine.skip_bad_samples=-2", "engine.gradient_clip_val=-1.0")
    assert "engine.precision: must be one of 32-true, 64-true, 16-mixed, bf16-mixed, 16-true, bf16-true, got 'fp16'" in text
    assert "engine.gradient_clip_algorithm: must be norm or value, got 'l2'" in text
    assert "engine.early_stopping_patience: must be 0 (off) or a positive integer, got -1" in text
    assert "engine.skip_bad_samples: must be 0 (off) or a positive integer, got -2" in text
    assert "engine.gradient_clip_val: must be 0 (off) or a positive number, got -1.0" in text


def test_batch_size_rule_counts_devices_and_accumulation():
    assert micro_batch_size(64, 1, 1) == 64
    assert micro_batch_size(64, 2, 4) == 8  # one optimizer step still sees 64 samples
    text = _problems("task.batch_size=60", "engine.accumulate_grad_batches=8")
    assert ("task.batch_size=60 is the global batch size of one optimizer step and must be divisible by "
            "engine.devices x engine.accumulate_grad_batches = 1 x 8 = 8; choose a multiple of 8 (e.g. 56)") in text


def test_half_precision_on_cpu_warns_and_falls_back_to_32_bit():
    with pytest.warns(UserWarning, match=r"engine.precision=bf16-mixed is not supported on this cpu; training in 32-true"):
        assert resolve_precision("bf16-mixed", "cpu") == "32-true"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("32-true", "cpu") == "32-true"
        assert resolve_precision("64-true", "cpu") == "64-true"


# ---------------------------------------------------------------- real fits


@pytest.mark.slow
def test_bf16_on_cpu_trains_in_32_bit_and_says_so(tmp_path):
    with pytest.warns(UserWarning, match="not supported on this cpu"):
        _, outcome, run_dir = run_cell(tmp_path, *DIGITS_FAST, "engine.precision=bf16-mixed", "engine.accelerator=cpu")
    assert outcome.state == "done", outcome.error
    assert status_and_scores(run_dir)[1]["train"]["precision"] == "32-true"


@pytest.mark.slow
def test_accumulation_keeps_the_optimizer_step_and_its_gradient(tmp_path):
    """64 samples per step as one batch or as 2 accumulated micro-batches of 32: the same steps, the same
    samples and (up to float rounding) the same model."""
    one = run_cell(tmp_path / "one", *DIGITS_FAST, *EVEN_SPLIT)
    two = run_cell(tmp_path / "two", *DIGITS_FAST, *EVEN_SPLIT, "engine.accumulate_grad_batches=2")
    (_, a), (_, b) = (status_and_scores(run[2]) for run in (one, two))
    assert one[1].state == two[1].state == "done"
    assert a["train"]["global_step"] == b["train"]["global_step"] == 2 * 20
    assert a["train"]["samples"] == b["train"]["samples"] == 2 * 1280
    assert one[0].run_id != two[0].run_id  # accumulation is part of the run's identity
    assert b["last"]["val_loss"] == pytest.approx(a["last"]["val_loss"], abs=1e-4)


def _weights(run_dir, spec) -> tuple[dict, dict]:
    """(initial, final) weights of a run: the initial ones rebuilt from its seed, the final from last.ckpt."""
    from framework.training.run import load_task

    model, _ = load_task(Node({**spec.config, "run": {"id": spec.run_id, "dir": str(run_dir)}}), Registry())
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, final


SGD_PLAIN = ("tasks=digits", "optimizers=sgd_baseline", "optimizer.momentum=0.0", "optimizer.weight_decay=0.0",
             "schedule.name=constant", "optimizer.learning_rate=0.1", "task.max_epochs=1")


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["value", "norm"])
def test_gradient_clipping_bounds_every_update(tmp_path, algorithm):
    """Plain SGD moves each weight by lr x gradient, so clipped gradients bound the total change."""
    clip, steps, lr = 1e-4, 20, 0.1
    spec, outcome, run_dir = run_cell(tmp_path / algorithm, *SGD_PLAIN, f"engine.gradient_clip_val={clip}",
                                      f"engine.gradient_clip_algorithm={algorithm}")
    assert outcome.state == "done", outcome.error
    initial, final = _weights(run_dir, spec)
    change = torch.cat([(final[k] - initial[k]).flatten() for k in initial])
    bound = steps * lr * clip * (1 + 1e-3)
    assert (change.abs().max() if algorithm == "value" else change.norm()) <= bound
    assert change.abs().max() > 0

    spec, _, run_dir = run_cell(tmp_path / "free", *SGD_PLAIN)  # unclipped, the same steps move far more
    initial, final = _weights(run_dir, spec)
    assert max((final[k] - initial[k]).abs().max() for k in initial) > 100 * bound


@pytest.mark.slow
def test_early_stopping_on_the_target_metric(tmp_path):
    # val_acc can never improve by 1.0: the second validation without improvement ends training
    _, outcome, run_dir = run_cell(tmp_path, "tasks=digits", "task.max_epochs=10", "engine.early_stopping_patience=1",
                                   "engine.early_stopping_min_delta=1.0")
    assert outcome.state == "done", outcome.error
    train = status_and_scores(run_dir)[1]["train"]
    assert train["epochs"] == 2 and train["stopped_early_at_epoch"] == 1


@pytest.mark.slow
def test_early_stopped_run_resumed_from_its_last_checkpoint_stops_there(tmp_path):
    # The decision to stop is taken just before the epoch's last.ckpt is written. A kill after it (while
    # the checkpoints are tested, say) leaves a run recorded as running, resumed from that checkpoint.
    overrides = ("tasks=digits", "task.max_epochs=10", "engine.early_stopping_patience=1",
                 "engine.early_stopping_min_delta=1.0")
    _, _, run_dir = run_cell(tmp_path, *overrides)
    uninterrupted = status_and_scores(run_dir)[1]
    (run_dir / "scores.json").unlink()
    write_status(run_dir, "running")  # what the kill leaves behind
    _, outcome, _ = run_cell(tmp_path, *overrides)
    assert outcome.state == "done", outcome.error
    status, resumed = status_and_scores(run_dir)
    assert status["attempts"] == 2
    assert resumed["train"]["epochs"] == uninterrupted["train"]["epochs"] == 2  # no epoch trained past the stop
    assert resumed["train"]["stopped_early_at_epoch"] == 1
    assert resumed["best"] == uninterrupted["best"] and resumed["last"] == uninterrupted["last"]


@pytest.mark.slow
def test_deterministic_mode_is_set_and_reruns_are_identical(tmp_path):
    try:
        first = run_cell(tmp_path / "a", *DIGITS_FAST, "task.dropout=0.2", "engine.deterministic=true")
        assert torch.are_deterministic_algorithms_enabled()  # Lightning set it for the run
        second = run_cell(tmp_path / "b", *DIGITS_FAST, "task.dropout=0.2", "engine.deterministic=true")
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = (status_and_scores(run[2])[1] for run in (first, second))
    assert first[1].state == second[1].state == "done"
    assert a["best"] == b["best"] and a["last"] == b["last"]


@pytest.mark.slow
def test_timing_samples_and_model_summary_are_recorded(tmp_path):
    _, outcome, run_dir = run_cell(tmp_path, *DIGITS_FAST)
    train = status_and_scores(run_dir)[1]["train"]
    assert train["samples"] == 2 * 1259 and train["steps"] == train["global_step"] == 2 * 20
    assert train["samples_per_s"] == pytest.approx(train["samples"] / train["time_s"])
    assert 0 < train["optimizer_step_ms"] < train["step_time_ms"]  # the update alone, without forward/backward
    assert 0 < train["optimizer_time_fraction"] < 1
    summary = (run_dir / "model_summary.txt").read_text()
    assert re.search(r"model\.model\.0\s+\|\s+Linear\s+\|\s+8\.3 K", summary)  # parameters per module
    assert train["parameters"] == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    assert "26.1 K    Total params" in summary
    assert not (run_dir / ".lock").exists()  # the run's lock is released when it ends
