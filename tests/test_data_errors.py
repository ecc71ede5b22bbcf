# python -m pytest tests/test_data_errors.py   (slow: short real fits of a user task that reads files)
"""Data that goes wrong, on a user task plugin reading PNG images listed in an annotation file: every
failure is recorded with the file and the sample named, an empty validation set is an error, bad
samples can be skipped and are counted, and a NaN in the data ends the run as diverged."""

from __future__ import annotations

import json

import pytest

from .cells import files_plugin, run_cell, status_and_scores
from .conftest import flaky_plugin

pytestmark = pytest.mark.slow


@pytest.fixture
def files(tmp_path):
    plugins, data = files_plugin(tmp_path)
    return str(plugins), data


def test_clean_files_train(files, tmp_path):
    plugins, _ = files
    _, outcome, run_dir = run_cell(tmp_path / "out", "tasks=files", plugin_paths=(plugins,))
    assert outcome.state == "done", outcome.error
    assert status_and_scores(run_dir)[1]["train"]["samples"] == 2 * 32


def test_corrupt_image_mid_epoch_names_the_file_and_the_sample(files, tmp_path):
    plugins, data = files
    (data / "images" / "train_005.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    _, outcome, run_dir = run_cell(tmp_path / "out", "tasks=files", plugin_paths=(plugins,))
    assert outcome.state == "failed"
    assert outcome.error.startswith("DataError: data_train sample 5: ")
    assert f"{data / 'images' / 'train_005.png'}: cannot decode the image" in outcome.error
    assert "DataError" in status_and_scores(run_dir)[0]["traceback"]


def test_truncated_image_is_caught_at_setup(files, tmp_path):
    """Sample 0 is loaded when the split is checked, before any training step."""
    plugins, data = files
    image = data / "images" / "val_000.png"
    image.write_bytes(image.read_bytes()[:30])  # a download cut short
    _, outcome, run_dir = run_cell(tmp_path / "out", "tasks=files", plugin_paths=(plugins,))
    assert outcome.state == "failed"
    assert "task 'files': data_val sample 0: " in outcome.error and str(image) in outcome.error
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # failed before training


def test_missing_image_is_named(files, tmp_path):
    plugins, data = files
    (data / "images" / "test_003.png").unlink()
    _, outcome, _ = run_cell(tmp_path / "out", "tasks=files", plugin_paths=(plugins,))
    assert outcome.state == "failed"
    assert f"data_test sample 3: {data / 'images' / 'test_003.png'}: image file not found" in outcome.error


def test_truncated_annotation_files_name_file_and_line(files, tmp_path):
    plugins, data = files
    text = (data / "annotations.json").read_text()
    (data / "annotations.json").write_text(text[: len(text) // 2])
    _, outcome, _ = run_cell(tmp_path / "json", "tasks=files", plugin_paths=(plugins,))
    assert outcome.state == "failed"
    line = text[: len(text) // 2].count("\n") + 1
    assert f"{data / 'annotations.json'}: truncated or invalid JSON at line {line}" in outcome.error
    assert "ends early" in outcome.error

    rows = (data / "labels.csv").read_text().splitlines()
    (data / "labels.csv").write_text("\n".join(rows[:10] + ["images/train_009.png,1"]) + "\n")
    _, outcome, _ = run_cell(tmp_path / "csv", "tasks=files", "task.annotations=labels.csv", plugin_paths=(plugins,))
    assert outcome.state == "failed"
    assert f"{data / 'labels.csv'}: line 11 has 2 fields, the header 3" in outcome.error


def test_empty_validation_set_is_an_error(files, tmp_path):
    plugins, data = files
    rows = [r for r in json.loads((data / "annotations.json").read_text()) if r["split"] != "val"]
    (data / "annotations.json").write_text(json.dumps(rows))
    _, outcome, _ = run_cell(tmp_path / "out", "tasks=files", plugin_paths=(plugins,))
    assert outcome.state == "failed"
    assert "task 'files': data_val is empty (0 samples) after FilesDataModule.setup()" in outcome.error
    assert "hold out part of the training data" in outcome.error


def test_skip_bad_samples_counts_logs_and_has_a_budget(files, tmp_path):
    plugins, data = files
    (data / "images" / "train_005.png").write_bytes(b"garbage")
    _, outcome, run_dir = run_cell(tmp_path / "skip", "tasks=files", "engine.skip_bad_samples=2", plugin_paths=(plugins,))
    assert outcome.state == "done", outcome.error
    train = status_and_scores(run_dir)[1]["train"]
    assert train["skipped_samples"] == 2  # the same sample, once per epoch
    assert train["samples"] == 2 * 32 - 2
    assert train["global_step"] == 2 * 4  # every batch still trained: the epoch's count of batches is intact
    logged = (run_dir / "logs" / "skipped_samples.txt").read_text().splitlines()
    assert len(logged) == 2 and all("train_005.png" in line for line in logged)

    # The budget holds across DataLoader worker processes (they share the log file).
    _, outcome, _ = run_cell(tmp_path / "budget", "tasks=files", "engine.skip_bad_samples=1", "engine.data_workers=2",
                             plugin_paths=(plugins,))
    assert outcome.state == "failed"
    assert "more than engine.skip_bad_samples=1 training samples failed to load" in outcome.error
    assert "train_005.png" in outcome.error and "\n" not in outcome.error


def test_nan_injected_mid_run_is_diverged(tmp_path):
    plugins = flaky_plugin(tmp_path / "plugins")
    _, outcome, run_dir = run_cell(tmp_path / "out", "tasks=flaky", "task.mode=nan", plugin_paths=(str(plugins),))
    assert outcome.state == "diverged"
    status, scores = status_and_scores(run_dir)
    assert status["state"] == "diverged" and "step 3" in status["error"] and not scores
