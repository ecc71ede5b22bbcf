"""Dataset category ids <-> contiguous labels, names, and which categories are things or stuff.

COCO's category ids have gaps (things 1..90, stuff 92..200); models want labels 0..C-1. The label
order is the order of the ids, so it is the same whichever annotation file the categories come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import Tensor

from framework.errors import FrameworkError


@dataclass(frozen=True)
class Categories:
    """Sorted category ids with their names and thing/stuff flags; label i is `ids[i]`."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    is_thing: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.names) == len(self.is_thing)):
            raise ValueError("Categories: ids, names and is_thing must have the same length")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"Categories: duplicate category ids in {list(self.ids)}")

    @classmethod
    def from_coco(cls, categories: Iterable[dict[str, Any]], source: str = "categories") -> Categories:
        """From a COCO `categories` list. Entries without `isthing` (instances files) are things."""
        try:
            entries = sorted(((int(c["id"]), str(c["name"]), bool(c.get("isthing", 1))) for c in categories))
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameworkError(f"malformed COCO categories in {source}: {exc!r}") from exc
        if not entries:
            raise FrameworkError(f"no categories in {source}")
        ids, names, things = zip(*entries)
        return cls(tuple(ids), tuple(names), tuple(things))

    @classmethod
    def from_names(cls, names: Iterable[str], things: Iterable[bool] | None = None) -> Categories:
        """Labels 0..C-1 that are their own ids (ADE20K, class folders, hand-made test cases)."""
        names = tuple(names)
        flags = tuple(things) if things is not None else (True,) * len(names)
        return cls(tuple(range(len(names))), names, flags)

    def to_coco(self) -> list[dict[str, Any]]:
        return [
            {"id": i, "name": n, "isthing": int(t), "supercategory": "thing" if t else "stuff"}
            for i, n, t in zip(self.ids, self.names, self.is_thing)
        ]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.ids)

    @property
    def thing_labels(self) -> list[int]:
        return [label for label, thing in enumerate(self.is_thing) if thing]

    @property
    def stuff_labels(self) -> list[int]:
        return [label for label, thing in enumerate(self.is_thing) if not thing]

    def label(self, category_id: int) -> int:
        """The contiguous label of a dataset category id."""
        try:
            return self._label_of[int(category_id)]
        except KeyError:
            raise FrameworkError(f"unknown category id {category_id} (known: {list(self.ids)})") from None

    def category_id(self, label: int) -> int:
        """The dataset category id of a contiguous label."""
        return self.ids[int(label)]

    def labels_of(self, category_ids: Iterable[int]) -> Tensor:
        return torch.tensor([self.label(c) for c in category_ids], dtype=torch.int64)

    def thing_mask(self) -> Tensor:
        """bool [C]: True for thing labels."""
        return torch.tensor(self.is_thing, dtype=torch.bool)

    @property
    def _label_of(self) -> dict[int, int]:
        # computed once per instance; the dataclass is frozen, so the cache goes in __dict__ directly
        cached = self.__dict__.get("_label_cache")
        if cached is None:
            cached = {category_id: label for label, category_id in enumerate(self.ids)}
            object.__setattr__(self, "_label_cache", cached)
        return cached
