# python -m pytest tests/test_multitask.py   (about 25 s on 2 shared CPUs; -m "not slow" skips the one training run)
"""The multitask_pain task: its data format and checks, the input shape detection, the combined loader's
loss masking, the per-head metrics, and a short training run through the engine that beats chance on both
heads. Everything runs the task's real code on small files written in tmp_path."""

from __future__ import annotations

import csv
import importlib
import json
import math

import numpy as np
import pytest
import torch

from framework.config import Node, parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.errors import ConfigError, DataError

from .cells import run_cell, status_and_scores

REGISTRY = Registry()
TASK = REGISTRY.get("task", "multitask_pain").load()  # imported as the engine imports it
PACKAGE = TASK.__name__.rsplit(".", 1)[0]
features = importlib.import_module(f"{PACKAGE}.features")
data = importlib.import_module(f"{PACKAGE}.data")
model = importlib.import_module(f"{PACKAGE}.model")
metrics = importlib.import_module(f"{PACKAGE}.metrics")
synthetic = importlib.import_module(f"{PACKAGE}.synthetic")

SMALL = synthetic.SyntheticSpec(pain_subjects=8, stimulus_subjects=8, windows_per_subject=10, time_steps=8)


def config(*overrides: str) -> Node:
    """The resolved config of one multitask_pain run, as the engine hands it to the task."""
    (spec,) = expand(parse_overrides(["tasks=multitask_pain", *overrides]), REGISTRY)
    return Node({**spec.config, "run": {"id": spec.run_id, "dir": ""}})


@pytest.fixture
def small(tmp_path):
    """A small dataset in the task's format (the bundled generator, fewer subjects and steps)."""
    return synthetic.write_synthetic(tmp_path / "data", SMALL)


def load(data_dir, *overrides: str):
    """(model, datamodule) as get_task builds them for task.data_dir=data_dir."""
    return TASK.get_task(lambda *a, **k: None, config(f"task.data_dir={data_dir}", *overrides))


def rewrite(path, **arrays) -> None:
    """Replace some arrays of a source file, keeping the others."""
    with np.load(path) as archive:
        content = {key: archive[key] for key in archive.files}
    np.savez(path, **{**content, **arrays})


# ------------------------------------------------------------------ input shape detection

SHAPES = {"vectors": (6,), "series": (5, 3), "empty": None}  # "empty": 0 samples saved as np.zeros(0)


def _source(tmp_path, name: str, kind: str):
    shape = SHAPES[kind]
    n = 0 if shape is None else 4
    x = np.zeros(0, np.float32) if shape is None else np.random.default_rng(0).normal(size=(n, *shape))
    path = tmp_path / f"{name}.npz"
    np.savez(path, features=x, labels=np.zeros(n, np.int64), subjects=np.array(["a"] * n))
    return features.load_source(name, path, ("c0", "c1"))


@pytest.mark.parametrize("pooling", features.POOLINGS)
@pytest.mark.parametrize("stimulus_kind", SHAPES)
@pytest.mark.parametrize("pain_kind", SHAPES)
def test_input_shape_from_every_combination_of_sources_and_pooling(tmp_path, pain_kind, stimulus_kind, pooling):
    sources = [_source(tmp_path, "pain", pain_kind), _source(tmp_path, "stimulus", stimulus_kind)]
    told = {SHAPES[k] for k in (pain_kind, stimulus_kind) if SHAPES[k] is not None}
    if not told:
        with pytest.raises(DataError) as error:
            features.detect_input_shape(sources, pooling)
        assert str(error.value).startswith("cannot detect the input shape: neither pain (")
        assert str(tmp_path / "pain.npz") in str(error.value) and str(tmp_path / "stimulus.npz") in str(error.value)
        return
    if len(told) > 1:
        pain, stimulus = (list(SHAPES[k]) for k in (pain_kind, stimulus_kind))
        with pytest.raises(DataError) as error:
            features.detect_input_shape(sources, pooling)
        assert str(error.value).startswith(f"the sources' samples differ in shape: pain ({tmp_path / 'pain.npz'}) "
                                           f"{pain}, stimulus ({tmp_path / 'stimulus.npz'}) {stimulus}; ")
        return
    (shape,) = told
    detected = features.detect_input_shape(sources, pooling)
    expected = 6 if shape == (6,) else {"none": 15, "mean": 3, "max": 3}[pooling]  # vectors have no time axis
    assert (detected.sample_shape, detected.size) == (shape, expected)
    for source in sources:  # what the data goes through has the detected size
        if source.sample_shape is not None:
            assert features.pool(source.features, pooling).shape == (4, expected)


def test_pooling_over_time():
    x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)  # 2 samples, 4 steps, 3 channels
    np.testing.assert_array_equal(features.pool(x, "mean"), x.mean(axis=1))
    np.testing.assert_array_equal(features.pool(x, "max"), x[:, -1])
    np.testing.assert_array_equal(features.pool(x, "none")[1], x[1].reshape(-1))  # time-major flattening


@pytest.mark.parametrize(("pooling", "size"), [("none", 8 * 4), ("mean", 4), ("max", 4)])
def test_model_input_size_is_the_detected_one(small, pooling, size):
    net, datamodule = load(small, f"task.temporal_pooling={pooling}")
    assert datamodule.spec.input.size == size == net.model.model.encoder[0].in_features
    assert datamodule.data_train.tensors[0].shape[1] == size


# ------------------------------------------------------------------ splits and the combined loader


def test_splits_are_by_subject_and_hold_both_sources(small):
    _, datamodule = load(small)
    manifest = features.read_manifest(small)
    sources = [features.load_source(name, *manifest[name]) for name in features.SOURCES]
    placed = data.assign_subjects(sources, 0.15, 0.15, 0)
    for source in sources:
        splits = {placed[s] for s in source.subjects}
        assert splits == {"train", "val", "test"}  # each source is in every split, one subject at least
    for split in data.SPLITS:
        dataset = getattr(datamodule, f"data_{split}")
        _, pain, stimulus = dataset.tensors
        assert ((pain != data.NO_LABEL) ^ (stimulus != data.NO_LABEL)).all()  # one label per sample
        expected = {name: sum(placed[s] == split for s in src.subjects) for name, src in zip(features.SOURCES, sources)}
        assert (int((pain != -1).sum()), int((stimulus != -1).sum())) == (expected["pain"], expected["stimulus"])


def test_a_subject_in_both_files_lands_in_one_split(small):
    rewrite(small / "stimulus.npz", subjects=np.char.replace(np.load(small / "stimulus.npz")["subjects"], "S", "P"))
    manifest = features.read_manifest(small)
    sources = [features.load_source(name, *manifest[name]) for name in features.SOURCES]
    assert set(sources[0].subjects) == set(sources[1].subjects)  # the same 8 people recorded twice
    placed = data.assign_subjects(sources, 0.15, 0.15, 3)
    assert len(placed) == 8 and set(placed.values()) == {"train", "val", "test"}
    assert placed == data.assign_subjects(sources[:1], 0.15, 0.15, 3)  # the second source moves no one


def test_combined_loader_masks_each_head_to_its_own_labels(small):
    net, datamodule = load(small)
    batches = list(datamodule.train_dataloader())
    seen = torch.cat([b[1] for b in batches]), torch.cat([b[2] for b in batches])
    assert sorted(seen[0].tolist()) == sorted(datamodule.data_train.tensors[1].tolist())  # every sample, once
    mixed = [b for b in batches if (b[1] != -1).any() and (b[2] != -1).any()]
    assert mixed, "the shuffled loader mixes both sources in a batch"
    x, pain, stimulus = mixed[0]
    loss, logits, _ = net._loss(mixed[0])
    has_pain, has_stimulus = pain != -1, stimulus != -1
    expected = (torch.nn.functional.cross_entropy(logits["pain"][has_pain], pain[has_pain])
                + torch.nn.functional.cross_entropy(logits["stimulus"][has_stimulus], stimulus[has_stimulus]))
    torch.testing.assert_close(loss, expected)


def test_a_batch_without_one_heads_labels_trains_only_the_other(small):
    net, datamodule = load(small)
    x, pain, stimulus = datamodule.data_train.tensors
    only_stimulus = pain == -1
    batch = (x[only_stimulus][:16], pain[only_stimulus][:16], stimulus[only_stimulus][:16])
    loss, _, parts = net._loss(batch)
    assert torch.isfinite(loss) and parts["pain"][1] == 0  # no pain label: 0, not NaN
    loss.backward()
    heads = net.model.model.heads
    assert heads["pain"].weight.grad.abs().sum() == 0 and heads["stimulus"].weight.grad.abs().sum() > 0
    assert net.model.model.encoder[0].weight.grad.abs().sum() > 0


def test_masked_cross_entropy_with_class_weights():
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, -1, 2, 1, -1, 2])
    weight = torch.tensor([0.5, 2.0, 1.0])
    total, count = model.masked_cross_entropy(logits, labels, weight)
    keep = labels != -1
    torch.testing.assert_close(total / count, torch.nn.functional.cross_entropy(logits[keep], labels[keep], weight=weight))
    assert model.masked_cross_entropy(logits, torch.full((6,), -1), weight) == (0, 0)


def test_balanced_class_weights_come_from_the_training_labels(small):
    net, datamodule = load(small, "task.class_weights=balanced")
    for index, head in enumerate(features.SOURCES):
        labels = datamodule.data_train.tensors[1 + index]
        counts = torch.bincount(labels[labels != -1]).double()
        expected = counts.sum() / (len(counts) * counts)
        torch.testing.assert_close(getattr(net, f"{head}_class_weights").double(), expected)
    uniform, _ = load(small)
    assert uniform.pain_class_weights is None


def test_heads_are_sized_from_the_manifests_classes(small):
    manifest = json.loads((small / "manifest.json").read_text())
    manifest["sources"]["stimulus"]["classes"] += ["T5", "T6"]  # two classes no sample has (yet)
    (small / "manifest.json").write_text(json.dumps(manifest))
    net, datamodule = load(small)
    assert net.model.model.heads["stimulus"].out_features == 7 and net.model.model.heads["pain"].out_features == 4
    assert datamodule.class_names[-1] == "stimulus:T6"


# ------------------------------------------------------------------ metrics and activations


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(1)
    target = rng.integers(0, 4, 200)
    target[target == 3] = 0  # class 3 in the predictions only: counted, as scikit-learn counts it
    logits = torch.tensor(rng.normal(size=(200, 4)))
    labels = torch.tensor(target)
    labels[::7] = -1  # the other source's samples: not scored
    scores = metrics.HeadMetrics(4)
    for part in range(0, 200, 64):
        scores.update(logits[part:part + 64], labels[part:part + 64], torch.tensor(1.0), torch.tensor(2.0))
    result = scores.compute()
    keep = labels.numpy() != -1
    predicted = logits.argmax(1).numpy()[keep]
    assert result["f1"] == pytest.approx(f1_score(target[keep], predicted, average="macro"))
    assert result["acc"] == pytest.approx(accuracy_score(target[keep], predicted))
    assert result["loss"] == pytest.approx(4 / 8)


def test_activations_follow_the_engine_contract(small):
    from framework.training.activations import batch_activations

    net, datamodule = load(small)
    batch = next(iter(datamodule.val_dataloader()))
    values = batch_activations(net, batch)
    assert sorted(values) == ["encoded", "pain_logits", "pain_probabilities", "stimulus_logits", "stimulus_probabilities"]
    assert values["encoded"].shape == (len(batch[0]), net.config.task.hidden_sizes[-1])
    assert values["pain_probabilities"].shape == (len(batch[0]), 4)
    torch.testing.assert_close(values["stimulus_probabilities"].sum(1), torch.ones(len(batch[0])))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("override", "message"), [
    ("task.temporal_pooling=avg", "task.temporal_pooling: must be one of none, mean, max, got 'avg'"),
    ("task.class_weights=auto", "task.class_weights: must be one of uniform, balanced, got 'auto'"),
    ("task.val_fraction=0", "task.val_fraction: must be a fraction of the subjects between 0 and 1"),
    ("task.test_fraction=0.9", "task.test_fraction: val_fraction + test_fraction must leave subjects to train on"),
    ("task.hidden_sizes=[64,0]", "task.hidden_sizes: must be a non-empty list of positive layer widths"),
    ("task.dropout=1.0", "task.dropout: must be in [0, 1), got 1.0"),
    ("task.stimulus_loss_weight=-1", "task.stimulus_loss_weight: must be a number >= 0"),
    ("task.target_metric=val_acc", "task.target_metric: must be a validation metric this task logs"),
    ("evaluation.plot.metric=test_acc", "evaluation.plot.metric: must be a metric this task logs"),
    ("task.data_dir=5", "task.data_dir: must be a folder holding manifest.json, or null"),
])
def test_bad_values_are_named_before_any_data_is_read(override, message):
    with pytest.raises(ConfigError) as error:
        TASK.get_datamodule(config(override))
    problems = error.value.problems
    assert len(problems) == 1 and problems[0].startswith(message), problems
    assert str(error.value) == problems[0]  # one line: a failed run is recorded by its error's first line


def test_all_bad_values_are_reported_at_once():
    problems = TASK.check_config(config("task.pain_loss_weight=0", "task.stimulus_loss_weight=0", "task.dropout=-0.1"))
    assert problems == ["task.dropout: must be in [0, 1), got -0.1",
                        "task.pain_loss_weight: and stimulus_loss_weight are both 0: nothing would be trained"]


def _error(data_dir, *overrides) -> str:
    with pytest.raises(DataError) as error:
        load(data_dir, *overrides)
    return str(error.value)


def test_missing_manifest_and_feature_file_are_named(small, tmp_path):
    assert _error(tmp_path / "nowhere").startswith(f"{tmp_path / 'nowhere' / 'manifest.json'}: file not found")
    (small / "stimulus.npz").unlink()
    assert _error(small).startswith(f"{small / 'stimulus.npz'}: feature file not found; check task.data_dir")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_feature_file_is_named(small, damage):
    path = small / "pain.npz"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"not a zip file at all")
    message = _error(small)
    assert message.startswith(f"{path}: cannot read the feature file (") and "corrupt" in message


def test_missing_array_is_named(small):
    with np.load(small / "pain.npz") as archive:
        np.savez(small / "pain.npz", features=archive["features"], labels=archive["labels"])
    assert _error(small) == (f"{small / 'pain.npz'}: missing array(s) subjects (has features, labels); "
                             f"each source file needs features, labels, subjects")


def test_bad_manifest_is_named(small):
    manifest = json.loads((small / "manifest.json").read_text())
    manifest["sources"]["pain"]["classes"] = ["only one"]
    (small / "manifest.json").write_text(json.dumps(manifest))
    assert _error(small).startswith(f"{small / 'manifest.json'}: sources.pain.classes must list at least 2 distinct")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_features_name_file_and_sample(small, value):
    x = np.load(small / "stimulus.npz")["features"].copy()
    x[17, 3, 1] = value
    rewrite(small / "stimulus.npz", features=x)
    assert _error(small) == (f"{small / 'stimulus.npz'}: 1 bad sample(s): sample 17: features not finite (NaN or inf); "
                             f"repair or drop them in the file (5 classes in manifest.json)")


def test_labels_outside_the_classes_name_file_and_samples(small):
    labels = np.load(small / "pain.npz")["labels"].copy()
    labels[[3, 40, 41, 42, 43, 44, 45]] = [4, -1, 9, 9, 9, 9, 9]
    rewrite(small / "pain.npz", labels=labels)
    message = _error(small)
    assert message.startswith(f"{small / 'pain.npz'}: 7 bad sample(s): sample 3: label 4 outside 0..3; "
                              f"sample 40: label -1 outside 0..3; sample 41: label 9 outside 0..3")
    assert message.endswith("and 2 more; repair or drop them in the file (4 classes in manifest.json)")


def test_float_labels_and_mismatched_lengths_are_named(small):
    labels = np.load(small / "pain.npz")["labels"]
    rewrite(small / "pain.npz", labels=labels.astype(np.float64))
    assert "labels must be integer class indices, got dtype float64" in _error(small)
    rewrite(small / "pain.npz", labels=labels[:-1])
    assert _error(small).startswith(f"{small / 'pain.npz'}: features, labels and subjects must have one entry per sample")


def test_a_source_too_small_for_a_validation_split_is_an_error(small):
    subjects = np.load(small / "pain.npz")["subjects"]
    rewrite(small / "pain.npz", subjects=np.where(subjects == "P001", "P001", "P002"))  # two people
    assert _error(small) == (f"{small / 'pain.npz'}: source 'pain' has 2 subject(s), too few for 1 validation, 1 test "
                             f"and at least 1 training subject; add subjects or lower task.val_fraction / task.test_fraction")


def test_balanced_weights_need_every_class_in_training(small):
    labels = np.load(small / "pain.npz")["labels"]
    rewrite(small / "pain.npz", labels=np.where(labels == 3, 2, labels))  # nobody reports severe pain
    assert "class(es) severe of source 'pain' have no training samples" in _error(small, "task.class_weights=balanced")
    load(small)  # uniform weights do not need it


def test_a_corrupt_file_fails_the_run_with_the_file_named(small, tmp_path):
    (small / "pain.npz").write_bytes(b"PK\x03\x04 cut short")
    _, outcome, _ = run_cell(tmp_path / "out", "tasks=multitask_pain", f"task.data_dir={small}")
    assert outcome.state == "failed"
    assert outcome.error.startswith(f"DataError: {small / 'pain.npz'}: cannot read the feature file")


# ------------------------------------------------------------------ bundled data and training


def test_bundled_data_is_generated_once_and_deterministically(tmp_path, monkeypatch):
    first = synthetic.prepare_synthetic(SMALL, tmp_path / "a")
    with monkeypatch.context() as patch:  # cached: not written again
        patch.setattr(synthetic, "write_synthetic", lambda *_: pytest.fail("the cached data was written again"))
        assert synthetic.prepare_synthetic(SMALL, tmp_path / "a") == first
    second = synthetic.prepare_synthetic(SMALL, tmp_path / "b")
    for name in ("pain.npz", "stimulus.npz"):
        with np.load(first / name) as a, np.load(second / name) as b:
            for key in features.ARRAYS:
                np.testing.assert_array_equal(a[key], b[key])
    assert (first / "manifest.json").read_text() == (second / "manifest.json").read_text()


@pytest.mark.slow
def test_training_beats_chance_on_both_heads_and_selects_the_best_epoch(tmp_path, monkeypatch):
    """The default task on its bundled data, generated into a fresh cache, through `run.execute` (what
    `framework run` does), with early stopping on val_pain_f1."""
    monkeypatch.setenv("FRAMEWORK_DATA_DIR", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    # One thread, as `framework run engine.workers=2` gives each run on 2 cores: a 13k-parameter MLP gains
    # nothing from more, and on a busy machine threads waiting for each other make each step ~25x slower.
    torch.set_num_threads(1)
    try:
        _, outcome, run_dir = run_cell(tmp_path / "out", "tasks=multitask_pain", "task.max_epochs=10",
                                       "engine.early_stopping_patience=3")  # needs val_pain_f1 at every validation
    finally:
        torch.set_num_threads(threads)
    assert outcome.state == "done", outcome.error
    assert len(list((tmp_path / "cache").glob("multitask_pain-synthetic-v*"))) == 1
    best = status_and_scores(run_dir)[1]["best"]
    # chance: pain 4 classes (40 % are "none"), stimulus 5 balanced classes
    assert best["test_pain_acc"] > 0.5 and best["test_pain_f1"] > 0.4, best
    assert best["test_stimulus_acc"] > 0.35 and best["test_stimulus_f1"] > 0.35, best
    with open(run_dir / "logs" / "metrics.csv") as fh:
        logged = [float(row["val_pain_f1"]) for row in csv.DictReader(fh) if row.get("val_pain_f1")]
    assert best["val_pain_f1"] == pytest.approx(max(logged)) and not math.isnan(max(logged))
    assert list((run_dir / "checkpoints").glob("best-epoch=*.ckpt"))
