"""SGD with (Nesterov) momentum and coupled L2 weight decay, with the shared warmup + decay schedule."""

from __future__ import annotations

from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    optimizer = torch.optim.SGD(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        momentum=opt.momentum,
        nesterov=opt.nesterov,
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, opt, config.run.total_steps)}
