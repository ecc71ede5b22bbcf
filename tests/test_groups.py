# python -m pytest tests/test_groups.py
"""Parameter groups: the weight-decay split, task groups with multipliers, and torch.optim compatibility."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from framework.training.parameter_groups import GroupedModel, ParameterGroup, is_no_decay


class MyRMSNorm(nn.Module):
    """A custom norm like Hugging Face's: recognised by its class name alone."""

    def __init__(self, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, size))  # 2-D on purpose: the ndim rule must not be what saves it


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.backbone = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 8, bias=False))
        self.backbone2 = nn.Linear(8, 8)  # shares a prefix string with "backbone", not a name part
        self.bn = nn.BatchNorm1d(8)
        self.norm = MyRMSNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos_embed[:, : tokens.shape[1]]
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)[:, 0]
        x = self.backbone2(self.backbone(x))
        return self.head(self.norm.weight * self.bn(x))


NO_DECAY = {
    "embed.weight", "pos_embed", "cls_token", "backbone.0.bias", "backbone.1.weight", "backbone.1.bias",
    "backbone2.bias", "bn.weight", "bn.bias", "norm.weight", "head.bias",
}
DECAY = {"backbone.0.weight", "backbone.2.weight", "backbone2.weight", "head.weight"}


def names(group: ParameterGroup) -> set[str]:
    return set(group.names)


def test_no_decay_split_covers_biases_norms_embeddings_and_tokens() -> None:
    grouped = GroupedModel(Net())
    assert set(grouped.no_decay_names()) == NO_DECAY
    groups = {g.name: g for g in grouped.parameter_groups()}
    assert set(groups) == {"default/decay", "default/no_decay"}
    assert names(groups["default/decay"]) == DECAY
    assert names(groups["default/no_decay"]) == NO_DECAY
    assert groups["default/no_decay"].wd_multiplier == 0.0


def test_class_name_containing_norm_counts_as_norm() -> None:
    class FancyGroupNormalizer(nn.Module):
        pass

    assert is_no_decay("x.scale", nn.Parameter(torch.ones(2, 2)), FancyGroupNormalizer())
    assert not is_no_decay("x.weight", nn.Parameter(torch.ones(2, 2)), nn.Linear(2, 2))


def test_state_dict_keys_are_prefixed_with_model() -> None:
    grouped = GroupedModel(Net())
    assert "model.head.weight" in grouped.state_dict()
    assert grouped(torch.zeros(2, 3, dtype=torch.long)).shape == (2, 3)


def test_prefix_group_matches_whole_name_parts() -> None:
    net = Net()
    group = ParameterGroup.from_prefix(net, "backbone", lr_multiplier=0.1)
    assert group.name == "backbone"
    assert names(group) == {"backbone.0.weight", "backbone.0.bias", "backbone.1.weight", "backbone.1.bias", "backbone.2.weight"}
    both = ParameterGroup.from_prefix(net, ["backbone.0", "head"])
    assert both.name == "backbone.0+head"
    assert names(both) == {"backbone.0.weight", "backbone.0.bias", "head.weight", "head.bias"}


def test_predicate_group_sees_the_owning_module() -> None:
    net = Net()
    group = ParameterGroup.from_predicate(net, lambda n, p, m: isinstance(m, nn.Linear), name="linear")
    assert names(group) == {n for n in DECAY | NO_DECAY if n.startswith(("backbone.0", "backbone.2", "backbone2", "head"))}


def test_only_trainable_parameters_count() -> None:
    net = Net()
    net.head.weight.requires_grad_(False)
    assert "head.weight" not in names(ParameterGroup.from_prefix(net, "head"))
    grouped = GroupedModel(net)
    assert all("head.weight" not in g.names for g in grouped.parameter_groups())


def test_backbone_group_gets_its_lr_multiplier_in_param_groups() -> None:
    net = Net()
    grouped = GroupedModel(net, [ParameterGroup.from_prefix(net, "backbone", lr_multiplier=0.1, wd_multiplier=2.0)])
    pgs = {pg["name"]: pg for pg in grouped.param_groups(lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))}
    assert set(pgs) == {"backbone/decay", "backbone/no_decay", "default/decay", "default/no_decay"}
    assert pgs["backbone/decay"]["lr"] == pytest.approx(1e-4)
    assert pgs["backbone/decay"]["weight_decay"] == pytest.approx(0.1)
    assert pgs["backbone/no_decay"]["lr"] == pytest.approx(1e-4)
    assert pgs["backbone/no_decay"]["weight_decay"] == 0.0
    assert pgs["default/decay"]["lr"] == pytest.approx(1e-3)
    assert pgs["default/decay"]["weight_decay"] == pytest.approx(0.05)
    assert pgs["default/no_decay"]["weight_decay"] == 0.0
    assert pgs["backbone/decay"]["lr_multiplier"] == pytest.approx(0.1)
    assert all(pg["betas"] == (0.9, 0.95) for pg in pgs.values())
    assert {id(p) for p in pgs["backbone/decay"]["params"]} == {id(net.backbone[0].weight), id(net.backbone[2].weight)}


def test_intersection_multiplies_multipliers() -> None:
    net = Net()
    a = ParameterGroup.from_prefix(net, "backbone", lr_multiplier=0.1, wd_multiplier=0.5)
    b = ParameterGroup.from_prefix(net, "backbone.1", name="ln", lr_multiplier=3.0, wd_multiplier=4.0)
    both = a & b
    assert both.name == "backbone/ln"
    assert names(both) == {"backbone.1.weight", "backbone.1.bias"}
    assert both.lr_multiplier == pytest.approx(0.3)
    assert both.wd_multiplier == pytest.approx(2.0)
    assert len(a.intersect(ParameterGroup.from_prefix(net, "head"))) == 0


def test_overlapping_groups_raise_naming_the_parameter() -> None:
    net = Net()
    groups = [ParameterGroup.from_prefix(net, "backbone"), ParameterGroup.from_prefix(net, "backbone.0", name="first")]
    with pytest.raises(ValueError, match="backbone.0.weight"):
        GroupedModel(net, groups)


def test_duplicate_or_reserved_group_names_raise() -> None:
    net = Net()
    with pytest.raises(ValueError, match="default"):
        GroupedModel(net, [ParameterGroup.from_prefix(net, "head", name="default")])
    with pytest.raises(ValueError, match="twice"):
        GroupedModel(net, [ParameterGroup.from_prefix(net, "head", name="x"), ParameterGroup.from_prefix(net, "bn", name="x")])


def test_group_of_another_model_raises() -> None:
    with pytest.raises(ValueError, match="not a parameter"):
        GroupedModel(Net(), [ParameterGroup.from_prefix(Net(), "head")])


def test_every_trainable_parameter_appears_exactly_once() -> None:
    net = Net()
    groups = [ParameterGroup.from_prefix(net, "backbone", lr_multiplier=0.1), ParameterGroup.from_prefix(net, ["head", "norm"])]
    grouped = GroupedModel(net, groups)
    seen = [id(p) for g in grouped.parameter_groups() for p in g.params]
    assert sorted(seen) == sorted(id(p) for p in net.parameters())
    assert all(len(g) > 0 for g in grouped.parameter_groups())  # empty intersections are dropped


def test_groups_survive_deepcopy() -> None:
    grouped = GroupedModel(Net())
    clone = copy.deepcopy(grouped)
    assert {id(p) for g in clone.parameter_groups() for p in g.params} == {id(p) for p in clone.parameters()}


def test_real_adamw_steps_and_no_decay_params_get_zero_weight_decay() -> None:
    torch.manual_seed(0)
    net = Net()
    grouped = GroupedModel(net, [ParameterGroup.from_prefix(net, "backbone", lr_multiplier=0.1)])
    optimizer = torch.optim.AdamW(grouped.param_groups(lr=1e-2, weight_decay=0.1))
    no_decay = {id(p) for n, p in net.named_parameters() if n in NO_DECAY}
    for pg in optimizer.param_groups:
        if any(id(p) in no_decay for p in pg["params"]):
            assert all(id(p) in no_decay for p in pg["params"])
            assert pg["weight_decay"] == 0.0
        else:
            assert pg["weight_decay"] == pytest.approx(0.1)
    before = net.head.weight.detach().clone()
    loss = grouped(torch.randint(0, 10, (4, 3))).square().mean()
    loss.backward()
    optimizer.step()
    assert not torch.equal(before, net.head.weight)
