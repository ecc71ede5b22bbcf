"""Template model: a TaskModel (LightningModule) around a small network.

Build the network in __init__ and pass it to super().__init__(model, optimizer, config). The engine
wraps it in a GroupedModel (no weight decay for biases, norms and embeddings). To give part of the
network its own learning rate (e.g. a pretrained backbone at 0.1x), wrap it yourself:

    from framework.api import GroupedModel, ParameterGroup
    backbone = ParameterGroup.from_prefix(net, "backbone", name="backbone", lr_multiplier=0.1)
    super().__init__(GroupedModel(net, [backbone]), optimizer, config)

(A prefix matches whole name parts: "backbone" takes backbone.conv.weight, not backbone2.weight.)
docs/adding_a_task.md walks through a whole task. Log scalars only: the engine selects the best checkpoint by task.target_metric (here val_loss) and
tests it, so validation_step and test_step must log `val_<metric>` and `test_<metric>`.
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from framework.api import TaskModel


class BlobsModel(TaskModel):
    def __init__(self, optimizer, config):
        task = config.task
        network = nn.Sequential(
            nn.Linear(task.input_dim, task.hidden_size),
            nn.LayerNorm(task.hidden_size),  # LayerNorm parameters get no weight decay automatically
            nn.ReLU(),
            nn.Linear(task.hidden_size, task.num_classes),
        )
        super().__init__(network, optimizer, config)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        # Logged every engine.log_every_n_steps steps; a NaN loss stops the run as "diverged".
        self.log_train_loss(loss, batch_size=len(y))
        return loss

    def _evaluate(self, batch, split: str) -> None:
        x, y = batch
        logits = self.model(x)
        # Epoch averages weighted by batch size; reduced over devices when there are several.
        self.log_scalars(
            {f"{split}_loss": F.cross_entropy(logits, y), f"{split}_acc": (logits.argmax(1) == y).float().mean()},
            batch_size=len(y),
        )

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def activations(self, batch):
        """Optional debugging hook: named internal tensors of a batch, each with the batch as its first
        dimension (`framework evaluate RUN --activations FILE` saves them). Called in eval mode under
        torch.no_grad(); leave it out if your task has nothing to show."""
        x, _ = batch
        features = self.model.model[:-1](x)  # self.model is the GroupedModel; .model the network given to it
        logits = self.model.model[-1](features)
        return {"features": features, "logits": logits, "probabilities": logits.softmax(-1)}
