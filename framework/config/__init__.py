"""Configuration: the override grammar, experiment files, merge order and typed validation.

    overrides.py   `key=value` arguments and experiment files -> Request (request.py)
    schema.py      the defaults are the schema: check a layer's keys and types, merge it
    checks.py      value rules on the resolved configuration (ranges, choices, the batch size rule)
    node.py        Node: the frozen configuration a run receives
    recipe.py      the plugins' layers: the task's training recipe for every optimizer, an optimizer's
                   schedule replacements (schedule.overridden_by)
    schedules.py   the learning-rate schedule of the `schedule` section
    grid.py        Request -> [RunSpec] with stable run ids; registry.py finds the plugins

The names below are the package's interface; everything here is pure Python (no torch).
"""

from framework.config.checks import PRECISIONS, check_semantics
from framework.config.node import Node
from framework.config.overrides import load_experiment, parse_overrides, parse_value, split_top_level
from framework.config.request import SECTIONS, SELECTOR_KEYS, Axis, Layer, Request, combine
from framework.config.schema import (
                                     ENGINE_DEFAULTS_FILE,
                                     NULLABLE,
                                     apply_layer,
                                     deep_merge,
                                     flat_keys,
                                     flatten,
                                     load_engine_defaults,
                                     nest,
)

__all__ = [
    "PRECISIONS", "check_semantics", "Node", "load_experiment", "parse_overrides", "parse_value", "split_top_level",
    "SECTIONS", "SELECTOR_KEYS", "Axis", "Layer", "Request", "combine", "ENGINE_DEFAULTS_FILE", "NULLABLE",
    "apply_layer", "deep_merge", "flat_keys", "flatten", "load_engine_defaults", "nest",
]
