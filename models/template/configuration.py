"""The template model's configuration: what `save_pretrained` writes to config.json and `from_pretrained`
reads back. Its `model_type` is the "autotype" key: config.json records it, and the engine registers this
class under it with transformers' AutoConfig, so a saved folder of this model loads by path.

    framework run tasks=classification task.model.name=template   (trains the `template-small` preset)
"""

from __future__ import annotations

from transformers import PretrainedConfig


class TemplateConvNetConfig(PretrainedConfig):
    # unique among transformers' model types and every model plugin's: rename it with the folder
    model_type = "template_convnet"

    def __init__(self, num_channels: int = 3, hidden_sizes: list[int] | None = None, dropout: float = 0.0, **kwargs):
        # every argument has a default: transformers builds a config with none to compare against
        self.num_channels = num_channels
        self.hidden_sizes = list(hidden_sizes or [16, 32, 64])  # one conv stage per width, each halving the size
        self.dropout = dropout  # before the classifier
        super().__init__(**kwargs)  # num_labels, id2label, label2id: the task's classes
