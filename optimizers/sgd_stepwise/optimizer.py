"""SGD with momentum and step decay of the learning rate: the step-decay recipe as an optimizer of its
own, so it sits next to the cosine-annealed baselines in every heatmap."""

from __future__ import annotations

from typing import Any

import torch

from framework.api import GroupedModel, build_scheduler, check_values


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "momentum": "[0, 1)"})
    if opt.nesterov and opt.momentum == 0:
        raise ValueError("optimizer.nesterov: Nesterov momentum needs optimizer.momentum > 0")
    optimizer = torch.optim.SGD(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        momentum=opt.momentum,
        nesterov=opt.nesterov,
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}
