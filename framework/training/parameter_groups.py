"""Parameter groups: which parameters an optimizer treats alike.

A task declares groups of its own (e.g. a pretrained backbone at 0.1x the learning rate) and wraps its
network in a `GroupedModel`. The model adds the weight-decay split every benchmark needs anyway (no decay
on biases, norms, embeddings and tokens), so an optimizer plugin only turns `param_groups(lr, wd)` into
an optimizer and never has to know which task it trains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import nn

DEFAULT_GROUP = "default"
DECAY, NO_DECAY = "decay", "no_decay"

# Modules whose own parameters are scales and shifts, not weights: decaying them toward 0 only hurts.
# Any class whose name contains "Norm" counts too, which covers custom norms (e.g. Hugging Face's
# LlamaRMSNorm) without importing their libraries.
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.modules.batchnorm._NormBase,  # every BatchNorm, SyncBatchNorm and InstanceNorm
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_EMBEDDING_TYPES = (nn.Embedding, nn.EmbeddingBag)
# Name fragments of learned tokens and position tables (ViT, BERT, MAE): lookups, not weights.
_NO_DECAY_NAME_PARTS = ("embed", "cls_token", "mask_token", "pos_")

Predicate = Callable[[str, nn.Parameter, nn.Module], bool]


def owned_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter, nn.Module]]:
    """Yield (name, parameter, owning module) for each parameter once, in `named_parameters()` order.

    A tied parameter (e.g. shared input and output embeddings) is reported under its first name, as
    `named_parameters()` does.
    """
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for local_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            yield (f"{module_name}.{local_name}" if module_name else local_name), param, module


def is_no_decay(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    """True for parameters that should not get weight decay: biases, norm and embedding parameters,
    tokens and position tables, and every parameter with at most one dimension (scales, gains)."""
    if param.ndim <= 1:
        return True
    last = name.rsplit(".", 1)[-1].lower()
    if last == "bias" or last.endswith("_bias"):
        return True
    if any(part in last for part in _NO_DECAY_NAME_PARTS):
        return True
    if isinstance(module, _NORM_TYPES + _EMBEDDING_TYPES):
        return True
    return "Norm" in type(module).__name__


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors elementwise makes no sense here
class ParameterGroup:
    """Named trainable parameters with learning-rate and weight-decay multipliers.

    `names` are the parameters' names in the module the group was built from; `params` are the
    parameter objects themselves, which is what `GroupedModel` matches on.
    """

    name: str
    names: tuple[str, ...]
    params: list[nn.Parameter] = field(repr=False)
    lr_multiplier: float = 1.0
    wd_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if len(self.names) != len(self.params):
            raise ValueError(f"parameter group '{self.name}': {len(self.names)} names for {len(self.params)} parameters")
        if self.lr_multiplier < 0 or self.wd_multiplier < 0:
            raise ValueError(f"parameter group '{self.name}': multipliers must be >= 0")

    @classmethod
    def from_predicate(
        cls,
        model: nn.Module,
        predicate: Predicate,
        name: str,
        lr_multiplier: float = 1.0,
        wd_multiplier: float = 1.0,
    ) -> ParameterGroup:
        """The trainable parameters for which `predicate(name, param, owning_module)` is true."""
        chosen = [(n, p) for n, p, m in owned_parameters(model) if p.requires_grad and predicate(n, p, m)]
        return cls(name, tuple(n for n, _ in chosen), [p for _, p in chosen], lr_multiplier, wd_multiplier)

    @classmethod
    def from_prefix(
        cls,
        model: nn.Module,
        prefixes: str | Iterable[str],
        name: str | None = None,
        lr_multiplier: float = 1.0,
        wd_multiplier: float = 1.0,
    ) -> ParameterGroup:
        """The trainable parameters under one or more submodule paths.

        A prefix matches whole name parts: "backbone" takes "backbone.conv.weight" but not
        "backbone2.weight". The name defaults to the prefixes joined by "+".
        """
        wanted = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
        if not wanted:
            raise ValueError("ParameterGroup.from_prefix needs at least one prefix")
        stems = tuple(p.rstrip(".") for p in wanted)

        def under(param_name: str, param: nn.Parameter, module: nn.Module) -> bool:
            return any(param_name == s or param_name.startswith(s + ".") for s in stems)

        return cls.from_predicate(model, under, name or "+".join(stems), lr_multiplier, wd_multiplier)

    def intersect(self, other: ParameterGroup) -> ParameterGroup:
        """The parameters in both groups, named "self/other", with the multipliers multiplied."""
        theirs = {id(p) for p in other.params}
        kept = [(n, p) for n, p in zip(self.names, self.params) if id(p) in theirs]
        return ParameterGroup(
            f"{self.name}/{other.name}",
            tuple(n for n, _ in kept),
            [p for _, p in kept],
            self.lr_multiplier * other.lr_multiplier,
            self.wd_multiplier * other.wd_multiplier,
        )

    __and__ = intersect

    def __len__(self) -> int:
        return len(self.params)


class GroupedModel(nn.Module):
    """A task's network together with its parameter groups; `forward` is the network's own.

    The network is stored as `self.model`, so checkpoint keys read `model.<name>` and a plain
    `nn.Module` is all Lightning ever sees. The groups are kept as parameter names and resolved on
    every call, so they stay right after `.to()`, `deepcopy` or freezing part of the network later.
    """

    def __init__(self, model: nn.Module, groups: list[ParameterGroup] | None = None):
        super().__init__()
        self.model = model
        self._task_groups: list[tuple[str, tuple[str, ...], float, float]] = self._resolve(groups or [])

    def _resolve(self, groups: list[ParameterGroup]) -> list[tuple[str, tuple[str, ...], float, float]]:
        """Check the task's groups and store them by parameter name (names in `self.model`)."""
        name_of = {id(p): n for n, p, _ in owned_parameters(self.model)}
        owner: dict[str, str] = {}
        resolved = []
        for group in groups:
            if group.name == DEFAULT_GROUP or group.name in {g[0] for g in resolved}:
                raise ValueError(f"parameter group name '{group.name}' is used twice (or is the reserved '{DEFAULT_GROUP}')")
            names = []
            for given, param in zip(group.names, group.params):
                if id(param) not in name_of:
                    raise ValueError(f"parameter group '{group.name}': '{given}' is not a parameter of the wrapped model")
                name = name_of[id(param)]
                if name in owner:
                    raise ValueError(f"parameter '{name}' is in two parameter groups: '{owner[name]}' and '{group.name}'")
                owner[name] = group.name
                names.append(name)
            resolved.append((group.name, tuple(names), group.lr_multiplier, group.wd_multiplier))
        return resolved

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def no_decay_names(self) -> list[str]:
        """Names (in `self.model`) of the trainable parameters that get no weight decay."""
        return [n for n, p, m in owned_parameters(self.model) if p.requires_grad and is_no_decay(n, p, m)]

    def parameter_groups(self) -> list[ParameterGroup]:
        """The final groups: each task group (then "default", the rest) split into decay and no_decay.

        Every trainable parameter is in exactly one group; empty groups are left out. The no_decay half
        has `wd_multiplier` 0, so the weight decay of a group is always `weight_decay * wd_multiplier`.
        """
        trainable = [(n, p, m) for n, p, m in owned_parameters(self.model) if p.requires_grad]
        no_decay = {n for n, p, m in trainable if is_no_decay(n, p, m)}
        params = {n: p for n, p, _ in trainable}
        claimed = {n for _, names, _, _ in self._task_groups for n in names}
        rest = tuple(n for n in params if n not in claimed)
        declared = [*self._task_groups, (DEFAULT_GROUP, rest, 1.0, 1.0)]
        groups = []
        for name, names, lr_mult, wd_mult in declared:
            names = tuple(n for n in names if n in params)  # parameters frozen since construction drop out
            for suffix, keep, split_wd in ((DECAY, False, 1.0), (NO_DECAY, True, 0.0)):
                part = tuple(n for n in names if (n in no_decay) == keep)
                if part:
                    groups.append(ParameterGroup(f"{name}/{suffix}", part, [params[n] for n in part], lr_mult, wd_mult * split_wd))
        return groups

    def param_groups(self, lr: float, weight_decay: float, **extra: Any) -> list[dict[str, Any]]:
        """Parameter-group dicts for `torch.optim`: "params", "name", "lr" (lr * lr_multiplier),
        "weight_decay" (weight_decay * wd_multiplier; 0 for no_decay groups), "lr_multiplier",
        "wd_multiplier", plus every keyword in `extra` (e.g. betas) unchanged in each group."""
        reserved = {"params", "name", "lr", "weight_decay", "lr_multiplier", "wd_multiplier"}
        if clash := reserved & set(extra):
            raise TypeError(f"param_groups: {', '.join(sorted(clash))} are computed per group; do not pass them")
        return [
            {
                "params": g.params,
                "name": g.name,
                "lr": lr * g.lr_multiplier,
                "weight_decay": weight_decay * g.wd_multiplier,
                "lr_multiplier": g.lr_multiplier,
                "wd_multiplier": g.wd_multiplier,
                **extra,
            }
            for g in self.parameter_groups()
        ]

    def extra_repr(self) -> str:
        return ", ".join(f"{g.name}: {len(g)}" for g in self.parameter_groups())


__all__ = ["GroupedModel", "ParameterGroup", "is_no_decay", "owned_parameters", "DEFAULT_GROUP", "DECAY", "NO_DECAY"]
