"""The action catalog: next-best actions the business can take for a customer.

An action is a touchpoint the business creates (an e-mail, a Zalo message, a call-back, ...).
The default catalog lives in ``shared/catalog/actions.json``; a user file with the same shape
adds actions or replaces default ones by id. This module is pure: it never reads the
environment, the caller passes the user file's path.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CATALOG_PATH = Path(__file__).parent / "catalog" / "actions.json"

Phase = Literal["pre_purchase", "purchase", "post_purchase"]
PHASES: tuple[str, ...] = ("pre_purchase", "purchase", "post_purchase")
JOURNEY_STEPS: tuple[str, ...] = (
    "need_recognition",
    "research",
    "discovery",
    "contact",
    "purchase",
    "after_sales",
    "loyalty",
)
# Delivery channels an action can use; "none" is the channel of the no-action choice.
CHANNELS: tuple[str, ...] = (
    "none",
    "email",
    "zalo",
    "messenger",
    "sms",
    "push",
    "ads",
    "hotline",
    "chat",
)
LANGUAGES: tuple[str, ...] = ("vi", "en")
NO_ACTION_ID = "no_action"

_FORMATTER = string.Formatter()


class ActionCatalogError(ValueError):
    """The action catalog (default or user file) is missing, unreadable or invalid."""


def template_fields(template: str) -> list[str]:
    """Names of the ``{placeholder}`` fields in a template; raises ValueError if unsafe.

    Only bare identifiers are allowed: no attribute access (``{x.__class__}``), no indexing,
    no conversions or format specs, so rendering can never reach into Python objects.
    """
    names = []
    for _literal, field, spec, conversion in _FORMATTER.parse(template):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"placeholder {{{field}}} is not a plain name")
        names.append(field)
    return names


def render_template(template: str, values: Mapping[str, Any], defaults: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders with ``values`` (then ``defaults``, then an empty string).

    Values are converted with ``str``; braces inside values are kept verbatim because the
    result is assembled piece by piece, never formatted twice.
    """
    parts = []
    for literal, field, _spec, _conversion in _FORMATTER.parse(template):
        parts.append(literal)
        if field is None:
            continue
        value = values.get(field)
        if value is None or value == "":
            value = defaults.get(field, "")
        parts.append(str(value))
    return "".join(parts)


class Action(BaseModel):
    """One next-best action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    label: dict[str, str]
    channel: str
    touchpoint: str | None = Field(
        default=None, description="catalog touchpoint id `<channel>.<action>` recorded on send"
    )
    templates: dict[str, str]
    phases: tuple[Phase, ...] = PHASES
    journey_steps: tuple[str, ...] = Field(default=(), description="empty means every step")
    consent: str | None = Field(default=None, description="channel whose opt-in is required")
    cost: float = Field(default=0.0, ge=0)
    value: float = Field(default=0.0, ge=0)
    cooldown_hours: float = Field(default=0.0, ge=0)
    service_recovery: bool = False
    incentive: float = Field(default=0.0, ge=0, le=1, description="discount share offered")
    prior_success_rate: float = Field(default=0.05, gt=0, lt=1)
    features: dict[str, float] = Field(default_factory=dict)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; expected one of {', '.join(CHANNELS)}")
        return value

    @field_validator("journey_steps")
    @classmethod
    def _known_steps(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [step for step in value if step not in JOURNEY_STEPS]
        if unknown:
            raise ValueError(f"unknown journey step(s) {unknown}")
        return value

    @field_validator("templates", "label")
    @classmethod
    def _both_languages(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [lang for lang in LANGUAGES if lang not in value]
        if missing:
            raise ValueError(f"missing language(s) {missing}")
        for text in value.values():
            template_fields(text)
        return value

    @model_validator(mode="after")
    def _touchpoint_matches_channel(self) -> Action:
        if self.touchpoint is not None and "." not in self.touchpoint:
            raise ValueError("touchpoint must read `<channel>.<action>`")
        if self.channel == "none" and self.touchpoint is not None:
            raise ValueError("an action on channel 'none' sends nothing and has no touchpoint")
        return self

    @property
    def is_no_action(self) -> bool:
        return self.channel == "none"

    def feature_vector(self) -> dict[str, float]:
        """Numeric description of the action, used by the reward model.

        Shared descriptors (channel, incentive, cost, ...) let the model score an action it
        has never seen logged, by analogy with actions that share them.
        """
        vector = {f"channel={channel}": float(channel == self.channel) for channel in CHANNELS}
        vector.update(
            {
                "incentive": self.incentive,
                "log_cost": math.log1p(self.cost),
                "log_value": math.log1p(self.value),
                "service_recovery": float(self.service_recovery),
                "needs_consent": float(self.consent is not None),
            }
        )
        for phase in PHASES:
            vector[f"phase={phase}"] = float(phase in self.phases)
        for name, number in self.features.items():
            vector[f"tag={name}"] = float(number)
        return vector

    def render(
        self,
        language: str,
        values: Mapping[str, Any],
        defaults: Mapping[str, Mapping[str, str]] | None = None,
    ) -> str:
        """The message in ``language`` (falls back to Vietnamese) with placeholders filled."""
        lang = language if language in self.templates else "vi"
        lang_defaults = (defaults or {}).get(lang, {})
        message = render_template(self.templates[lang], values, lang_defaults)
        return message[:1].upper() + message[1:]  # a default such as "bạn" may open it


class ActionCatalogFile(BaseModel):
    """The JSON document shape, for the default catalog and for user files."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    currency: str = "VND"
    placeholder_defaults: dict[str, dict[str, str]] = Field(default_factory=dict)
    actions: list[Action]

    @model_validator(mode="after")
    def _unique_ids(self) -> ActionCatalogFile:
        seen: set[str] = set()
        for action in self.actions:
            if action.id in seen:
                raise ValueError(f"duplicate action id {action.id!r}")
            seen.add(action.id)
        return self


class ActionCatalog(Mapping[str, Action]):
    """Read-only mapping of action id to Action, in catalog order."""

    def __init__(
        self,
        actions: list[Action],
        currency: str = "VND",
        placeholder_defaults: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._actions = {action.id: action for action in actions}
        self.currency = currency
        self.placeholder_defaults = {k: dict(v) for k, v in (placeholder_defaults or {}).items()}

    def __getitem__(self, action_id: str) -> Action:
        return self._actions[action_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)

    def render(self, action_id: str, language: str, values: Mapping[str, Any]) -> str:
        return self._actions[action_id].render(language, values, self.placeholder_defaults)

    def feature_table(self) -> dict[str, dict[str, float]]:
        """Action id -> numeric features, as the reward model expects them."""
        return {action_id: action.feature_vector() for action_id, action in self._actions.items()}

    def touchpoint_ids(self) -> set[str]:
        return {a.touchpoint for a in self._actions.values() if a.touchpoint is not None}


def _read_catalog_file(path: Path) -> ActionCatalogFile:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ActionCatalogError(f"cannot read action catalog {path}: {exc}") from exc
    try:
        return ActionCatalogFile.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ActionCatalogError(f"{path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ActionCatalogError(f"{path}: {where}: {first['msg']}") from exc


def load_actions(extra_file: str | Path | None = None) -> ActionCatalog:
    """The default catalog, extended by ``extra_file`` (same shape) when given.

    Actions in the extra file are appended; an action whose id already exists replaces the
    default one. Placeholder defaults are merged per language.
    """
    base = _read_catalog_file(DEFAULT_CATALOG_PATH)
    actions = {action.id: action for action in base.actions}
    defaults = {lang: dict(values) for lang, values in base.placeholder_defaults.items()}
    currency = base.currency
    if extra_file is not None:
        extra = _read_catalog_file(Path(extra_file))
        if extra.currency != currency:
            raise ActionCatalogError(
                f"{extra_file}: currency {extra.currency!r} differs from the default {currency!r}"
            )
        for action in extra.actions:
            actions[action.id] = action
        for lang, values in extra.placeholder_defaults.items():
            defaults.setdefault(lang, {}).update(values)
    return ActionCatalog(list(actions.values()), currency, defaults)
