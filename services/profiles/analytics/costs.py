"""Cost per event of each touchpoint, from a JSON file, for return on investment.

The file maps a touchpoint id (`email.send`) or a channel (`ads`) to the cost of one event
there, in the currency of the revenue:

    {"email.send": 300, "zalo.outreach": 150, "ads": 4000}

A touchpoint's own entry wins over its channel's. Touchpoints without either cost nothing
and show no ROI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import CatalogError


@dataclass(frozen=True)
class TouchpointCosts:
    by_key: Mapping[str, float] = field(default_factory=dict)

    def cost_per_event(self, touchpoint: str, channel: str) -> float | None:
        if touchpoint in self.by_key:
            return self.by_key[touchpoint]
        return self.by_key.get(channel)


def parse_costs(document: object, origin: str = "costs") -> TouchpointCosts:
    if not isinstance(document, Mapping):
        raise CatalogError(f"{origin}: expected an object mapping touchpoint or channel to cost")
    costs = {}
    for key, value in document.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CatalogError(f"{origin}: {key}: cost must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise CatalogError(f"{origin}: {key}: cost must be a finite number >= 0")
        costs[str(key)] = float(value)
    return TouchpointCosts(costs)


def load_costs(path: Path | None) -> TouchpointCosts:
    if path is None:
        return TouchpointCosts()
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"cannot read touchpoint costs {path}: {exc}") from exc
    return parse_costs(document, str(path))
