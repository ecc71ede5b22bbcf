"""Lion (Chen et al., 2023): sign of an interpolated momentum, with the task's warm-up + decay schedule."""

from __future__ import annotations

from typing import Any

from framework.api import GroupedModel, build_scheduler, check_values

try:
    from lion_pytorch import Lion
except ImportError as exc:  # the plugin is listed as broken with this hint instead of a bare import error
    raise ImportError("the lion optimizer needs lion-pytorch: pip install lion-pytorch") from exc


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    # lion-pytorch only asserts lr > 0 and betas in [0, 1], without naming the key.
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "[0, 1]", "beta2": "[0, 1]"})
    # Weight decay as in the paper: each step w *= 1 - lr * wd with the group's current lr, so it follows
    # the schedule and the group's multiplier. (lion-pytorch's decoupled_weight_decay option divides wd by
    # a single initial lr shared by all groups, which would undo the multipliers: not used.)
    optimizer = Lion(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        lr=opt.learning_rate,
        betas=(opt.beta1, opt.beta2),
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}
