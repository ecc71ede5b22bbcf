# python -m pytest tests/test_vision_tasks.py            (the training tests are marked slow: -m "not slow" skips them)
"""The vision tasks end to end on their bundled data with the tiny presets: a short training run beats
the untrained model on the task's target metric; real data that is missing is one clear error; class
names travel with checkpoints."""

from __future__ import annotations

import pytest
import torch

from framework.config import parse_overrides
from framework.config.grid import expand
from framework.config.registry import Registry
from framework.errors import FrameworkError

REGISTRY = Registry()


def _build(task: str, tmp_path, *overrides: str):
    from framework.training.run import build

    request = parse_overrides([f"tasks={task}", "optimizers=adamw_baseline", f"engine.output_dir={tmp_path}", *overrides])
    (spec,) = expand(request, REGISTRY)
    model, datamodule, *_ = build(spec, REGISTRY, tmp_path / "run")
    return model, datamodule


def _trainer(**options):
    import lightning.pytorch as pl

    from framework.training.optimizer_modes import OptimizerModes

    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=[OptimizerModes()], **options)


# (task, target metric, training steps, overrides keeping each run well under a minute on 2 CPU cores)
LEARNING = [
    ("classification", "val_acc", 40, ["task.batch_size=16"]),
    ("semantic_segmentation", "val_miou", 30, ["task.batch_size=4", "task.crop_size=64", "task.eval_short=64"]),
    ("semantic_segmentation", "val_miou", 30, ["task.batch_size=4", "task.crop_size=64", "task.eval_short=64",
                                               "task.model.name=upernet-tiny"]),
]

@pytest.mark.slow
@pytest.mark.parametrize(("task", "metric", "steps", "overrides"), LEARNING,
                         ids=["classification", "segformer", "upernet"])
def test_short_training_beats_the_untrained_model(task, metric, steps, overrides, tmp_path):
    torch.manual_seed(0)
    model, datamodule = _build(task, tmp_path, *overrides)
    # classification validates on all 120 images (sorted by class: a prefix would hold few classes)
    trainer = _trainer(max_steps=steps, limit_val_batches=1.0 if task == "classification" else 4)
    before = trainer.validate(model, datamodule=datamodule, verbose=False)[0][metric]
    trainer.fit(model, datamodule=datamodule)
    after = trainer.validate(model, datamodule=datamodule, verbose=False)[0][metric]
    print(f"{task}: {metric} {before:.3f} -> {after:.3f} after {steps} steps")
    assert after > before + 0.05, f"{metric} went from {before:.3f} to only {after:.3f}"


# (task, target metric, training steps, overrides): the set-prediction models (DETR family, Mask2Former)
SCENES = [
    ("coco_detection", "val_bbox_ap", 200, ["task.bundled_max_objects=1"]),  # AP 0 -> ~0.8
    ("coco_panoptic", "val_pq", 200, ["optimizer.learning_rate=1e-3"]),       # PQ 0 -> ~0.9 (0.2 at 120 steps)
    ("coco_instance", "val_mask_ap", 120, ["optimizer.learning_rate=1e-3"]),  # mask AP 0 -> ~0.8
]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "metric", "steps", "overrides"), SCENES, ids=[t[0] for t in SCENES])
def test_set_prediction_training_learns_its_scenes(task, metric, steps, overrides, tmp_path):
    """Set-prediction models need thousands of steps before their metric on held-out scenes moves (DETR
    trains for 500 epochs, Mask2Former for 50 on COCO), more than a test can spend on a CPU. The
    learning signal here is the metric on four scenes the model trains on, which the untrained model
    scores at zero: matching, masks or boxes and classification all have to work for it to rise."""
    from torch.utils.data import Subset

    from framework.vision.task_data import coco_root

    torch.manual_seed(0)
    model, datamodule = _build(task, tmp_path, "task.batch_size=4", "task.bundled_image_size=64",
                               "task.eval_short=64", *overrides)
    root = coco_root(model.config.task, datamodule.kind)
    scenes = Subset(datamodule.read(root, "train", datamodule.eval_transform), range(4))
    datamodule.setup("fit")
    datamodule.data_train = datamodule.data_val = scenes  # no flips or crops: the same four scenes each step
    # one step per epoch here: validate (a COCO evaluation) only before and after, not every step
    trainer = _trainer(max_steps=steps, check_val_every_n_epoch=10 * steps)
    before = trainer.validate(model, datamodule=datamodule, verbose=False)[0][metric]
    trainer.fit(model, datamodule=datamodule)
    after = trainer.validate(model, datamodule=datamodule, verbose=False)[0][metric]
    print(f"{task}: {metric} on its four training scenes {before:.3f} -> {after:.3f} after {steps} steps")
    assert after > before + 0.3, f"{metric} went from {before:.3f} to only {after:.3f}"


def test_evaluation_loss_does_not_depend_on_the_training_random_state(tmp_path):
    """Mask2Former's loss samples points at random: a validation at any moment of training (or by
    `framework evaluate`, later) gives the same loss, and the training stream is left as it was."""
    model, datamodule = _build("coco_instance", tmp_path, "task.batch_size=4", "task.eval_short=64")
    trainer = _trainer(limit_val_batches=2)
    losses = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        losses.append(trainer.validate(model, datamodule=datamodule, verbose=False)[0]["val_loss"])
        assert torch.initial_seed() == seed
    assert losses[0] == losses[1]


@pytest.mark.parametrize(("task", "key"), [("classification", "image folder"), ("semantic_segmentation", "COCO data"),
                                           ("coco_detection", "COCO data"), ("coco_panoptic", "COCO data"),
                                           ("coco_instance", "COCO data")])
def test_missing_real_data_is_one_clear_error(task, key, tmp_path):
    missing = tmp_path / "no_such_data"
    with pytest.raises(FrameworkError, match=f"{key} not found: looked for {missing}"):
        _build(task, tmp_path, f"task.data_dir={missing}")


def test_checkpoints_keep_and_restore_class_names(tmp_path):
    from framework.training.callbacks import CheckpointMetadata

    model, datamodule = _build("classification", tmp_path, "task.batch_size=8")
    trainer = _trainer(max_steps=1, limit_val_batches=1)
    trainer.callbacks.append(CheckpointMetadata(model.config))
    trainer.fit(model, datamodule=datamodule)
    path = tmp_path / "one.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    names = ["circle", "cross", "ring", "square", "star", "triangle"]
    assert checkpoint["framework"]["class_names"] == names
    fresh, _ = _build("classification", tmp_path / "fresh", "task.batch_size=8")
    fresh.class_names = []
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.class_names == names


def test_loaders_batch_with_the_tasks_collate_also_when_skipping_bad_samples(tmp_path):
    from framework.vision.collate import Batch

    for skip in (0, 2):  # engine.skip_bad_samples > 0 wraps the collate to drop samples that failed
        _, datamodule = _build("semantic_segmentation", tmp_path / str(skip), "task.batch_size=2",
                               f"engine.skip_bad_samples={skip}")
        datamodule.setup("fit")
        batch = next(iter(datamodule.train_dataloader()))
        assert isinstance(batch, Batch) and batch.images.shape == (2, 3, 128, 128)
