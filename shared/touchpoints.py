"""The touchpoint catalog: every kind of moment at which a customer meets the business.

The default catalog ships in `catalog/touchpoints.json`; a user file (named by the
`TOUCHPOINT_CATALOG_FILE` setting) adds touchpoints or overrides default ones by id.
Ids read `channel.action`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.errors import CatalogError


class Phase(StrEnum):
    PRE_PURCHASE = "pre_purchase"
    PURCHASE = "purchase"
    POST_PURCHASE = "post_purchase"


class JourneyStep(StrEnum):
    NEED_RECOGNITION = "need_recognition"
    RESEARCH = "research"
    DISCOVERY = "discovery"
    CONTACT = "contact"
    PURCHASE = "purchase"
    AFTER_SALES = "after_sales"
    LOYALTY = "loyalty"


class ConsentStatus(StrEnum):
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"
    UNSUBSCRIBE = "unsubscribe"
    SPAM_REPORT = "spam_report"


Signal = Literal[
    "purchase",  # an order: revenue, moves the customer to post-purchase
    "refund",  # an order cancelled or refunded
    "conversion",  # a soft conversion (sign-up, add to cart, trial)
    "engagement",  # the customer responded (open, click, reply)
    "negative",  # the customer pushed back (unsubscribe, unfollow, lost deal)
    "outreach",  # a message or contact the business sent
    "delivery_failure",  # our message did not reach the customer
    "bad_experience",  # complaint, failed delivery, warranty problem
    "resolution",  # a bad experience was resolved
    "feedback",  # a rating, NPS or review
    "identify",  # links an anonymous visitor to a known customer
]


class Labels(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    en: str = Field(min_length=1)
    vi: str = Field(min_length=1)


class ConsentEffect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    channel: str
    status: ConsentStatus


class Touchpoint(BaseModel):
    """One catalog entry with its facets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", examples=["web.visit"])
    channel: str
    phase: Phase
    journey_step: JourneyStep
    platform: Literal["online", "offline"]
    directness: Literal["direct", "indirect"]
    control: Literal["owned", "paid", "earned"]
    label: Labels
    need: str = ""
    signals: frozenset[Signal] = frozenset()
    consent_effect: ConsentEffect | None = None

    @model_validator(mode="after")
    def _channel_prefixes_id(self) -> Touchpoint:
        if self.id.split(".", 1)[0] != self.channel:
            raise ValueError(f"id {self.id!r} must start with its channel {self.channel!r}")
        return self

    def has(self, signal: Signal) -> bool:
        return signal in self.signals


class TouchpointCatalog:
    """Touchpoints by id, with close-match suggestions for unknown ids."""

    def __init__(self, touchpoints: Iterable[Touchpoint]):
        self._by_id: dict[str, Touchpoint] = {t.id: t for t in touchpoints}
        self.channels: frozenset[str] = frozenset(t.channel for t in self._by_id.values())

    def __contains__(self, touchpoint_id: object) -> bool:
        return touchpoint_id in self._by_id

    def __getitem__(self, touchpoint_id: str) -> Touchpoint:
        return self._by_id[touchpoint_id]

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, touchpoint_id: str) -> Touchpoint | None:
        return self._by_id.get(touchpoint_id)

    def close_matches(self, touchpoint_id: str, limit: int = 5) -> list[str]:
        return difflib.get_close_matches(touchpoint_id, self._by_id, n=limit, cutoff=0.5)


def _parse_entries(document: Mapping, origin: str) -> list[Touchpoint]:
    entries = document.get("touchpoints")
    if not isinstance(entries, list):
        raise CatalogError(f"{origin}: expected an object with a 'touchpoints' list")
    parsed = []
    for index, entry in enumerate(entries):
        try:
            parsed.append(Touchpoint.model_validate(entry))
        except ValidationError as exc:
            raise CatalogError(f"{origin}: touchpoints[{index}]: {exc}") from exc
    return parsed


def load_catalog(extra_file: Path | None = None) -> TouchpointCatalog:
    """The default catalog, extended and overridden by `extra_file` when given."""
    default_text = resources.files("shared.catalog").joinpath("touchpoints.json").read_text("utf-8")
    entries = _parse_entries(json.loads(default_text), "default catalog")
    if extra_file is not None:
        try:
            document = json.loads(Path(extra_file).read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CatalogError(f"cannot read touchpoint catalog {extra_file}: {exc}") from exc
        entries.extend(_parse_entries(document, str(extra_file)))
    return TouchpointCatalog(entries)
