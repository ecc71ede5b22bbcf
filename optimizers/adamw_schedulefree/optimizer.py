"""Schedule-free AdamW (Defazio et al., 2024): no decay schedule, the evaluated weights are an average.

The engine switches the optimizer to eval mode around validation, testing and checkpointing and back to
train mode for training steps (framework/training/optimizer_modes.py), so scores and checkpoints use the averaged
weights. The warm-up is the task's (config.schedule), with the decay replaced by a constant lr in this
plugin's default.yaml (`schedule: name: constant`); the library's own warm-up is left at 0 so it is not
applied twice.
"""

from __future__ import annotations

from typing import Any

from framework.api import GroupedModel, build_scheduler, check_values

try:
    from schedulefree import AdamWScheduleFree
except ImportError as exc:  # the plugin is listed as broken with this hint instead of a bare import error
    raise ImportError("the adamw_schedulefree optimizer needs schedulefree: pip install schedulefree") from exc


def configure_optimizers(model: GroupedModel, config: Any) -> dict[str, Any]:
    opt = config.optimizer
    # schedulefree checks nothing itself: a beta1 of 0 would divide by zero in eval().
    check_values(opt, {"learning_rate": "(0, inf)", "weight_decay": "[0, inf)", "beta1": "(0, 1)", "beta2": "[0, 1)",
                       "eps": "(0, inf)", "r": "[0, inf)", "weight_lr_power": "[0, inf)"})
    optimizer = AdamWScheduleFree(
        model.param_groups(opt.learning_rate, opt.weight_decay),
        lr=opt.learning_rate,
        betas=(opt.beta1, opt.beta2),
        eps=opt.eps,
        warmup_steps=0,  # the task's schedule warms up (schedule.warmup_steps); the library's warm-up is off
        r=opt.r,
        weight_lr_power=opt.weight_lr_power,
    )
    return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, config.schedule, config.run.total_steps)}
