"""VisionTaskModel: the TaskModel every vision task shares. The network is a transformers model; its
adapter (adapters/) turns batches into inputs and outputs into predictions; the task only says which
metric scores the predictions (`new_metric`, `update_metric`).

Logged: `train_loss` (every engine.log_every_n_steps steps), `{split}_loss` per epoch weighted by batch
size, and the metric's scalars as `{split}_{name}` at the end of each validation and test epoch.
Only scalars are logged; NaN entries (e.g. PQ of stuff when no stuff class occurred) are left out.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from framework.training.task import TaskModel
from framework.vision.adapters import adapter_for
from framework.vision.models import grouped, load_model
from framework.vision.predict import IMAGE_SUFFIXES


class VisionTaskModel(TaskModel):
    kind = ""  # the models.py task kind: selects presets and the Auto class
    adapter_kind: str | None = None  # adapter_for's `kind` (classification: any image classifier)
    # what `framework predict` writes (prediction_files.FORMATS): classification, detection, instance,
    # semantic or panoptic
    prediction_format = ""
    predict_suffixes = IMAGE_SUFFIXES

    def __init__(self, optimizer: Any, config: Any, class_names: list[str]):
        settings = config.task.model
        network, pretrained = load_model(self.kind, settings.name, list(class_names), backbone=settings.get("backbone"),
                                         plugin_paths=list(config.engine.get("plugin_paths") or []))
        super().__init__(grouped(network, pretrained, float(settings.backbone_lr_multiplier)), optimizer, config)
        self.adapter = adapter_for(network, self.adapter_kind)
        self.class_names = list(class_names)  # CheckpointMetadata saves them with every checkpoint
        self.metric: Any = None

    @property
    def network(self) -> torch.nn.Module:
        """The transformers model itself (a property, not a second attribute: a submodule registered
        twice would be saved twice in every checkpoint)."""
        return self.model.model

    # --- what a task defines -------------------------------------------------------------------------
    def new_metric(self) -> Any:
        raise NotImplementedError

    def update_metric(self, predictions: Any, batch: Any) -> None:
        raise NotImplementedError

    # --- the shared loop -----------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        loss = self.adapter.loss(self.network(**self.adapter.inputs(batch)))
        self.log_train_loss(loss, batch_size=len(batch))
        return loss

    def _evaluate(self, batch: Any, split: str, batch_idx: int) -> None:
        # Some losses sample (Mask2Former's loss reads its masks at random points): each evaluation batch
        # draws from a generator seeded by its index, so a checkpoint scores the same loss whenever it is
        # evaluated (`framework evaluate` reproduces it), and the training stream is restored afterwards.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(batch_idx)
            outputs = self.network(**self.adapter.inputs(batch))
        self.log_scalars({f"{split}_loss": self.adapter.loss(outputs)}, batch_size=len(batch))
        self.update_metric(self.adapter.predictions(outputs, batch), batch)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val", batch_idx)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test", batch_idx)

    def on_validation_epoch_start(self) -> None:
        self.metric = self.new_metric()

    on_test_epoch_start = on_validation_epoch_start

    def _log_metric(self, split: str) -> dict[str, float]:
        values = self.metric.compute()  # gathered over every process when there are several
        scalars = {f"{split}_{k}": v for k, v in values.items() if "/" not in k and not math.isnan(v)}
        # identical on every process after the gather (sync_dist keeps Lightning from warning); an epoch
        # value, so no batch size to weight by (given, so that Lightning does not guess one)
        self.log_dict({k: torch.tensor(v) for k, v in scalars.items()}, sync_dist=self.sync_dist, batch_size=1)
        return values

    def on_validation_epoch_end(self) -> None:
        self._log_metric("val")

    def on_test_epoch_end(self) -> None:
        self._log_metric("test")

    def activations(self, batch):
        """Debugging hook (TaskModel.activations): the network's outputs on the batch's images that hold one
        entry per image (logits, boxes, mask logits, hidden states). A model whose outputs are per-image
        lists (Mask R-CNN's detections) has none."""
        outputs = self.network(**self.adapter.image_inputs(batch))
        found = {key: value for key, value in outputs.items()
                 if torch.is_tensor(value) and value.ndim and value.shape[0] == len(batch)}
        if not found:
            raise NotImplementedError(f"task '{self.config.task.name}': model {self.network.config.model_type} returns no "
                                      f"per-image tensors to save as activations")
        return found

    def predict_files(self, files, output, datamodule):
        """`framework predict`: the adapter's predictions on image files, in `prediction_format`'s files."""
        from framework.vision.prediction_files import write_predictions

        return write_predictions(self, files, output, datamodule)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = (checkpoint.get("framework") or {}).get("class_names")
        if saved:
            self.class_names = list(saved)
