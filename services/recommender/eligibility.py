"""Eligibility and contact policy: which actions may be proposed to a customer right now.

Pure: the profile snapshot, the catalog, the policy and ``now`` are arguments. Rules are
checked in a fixed order and the first one that fails names the rejection, so a marketer
can see why an action was not proposed:

    phase -> journey_step -> service_first -> consent -> cooldown
          -> daily_cap -> weekly_cap -> quiet_hours

``no_action`` is always eligible: doing nothing needs no consent and never disturbs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.actions import Action

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
OPT_IN = "opt_in"
CONSENT_STATES = ("opt_in", "opt_out", "unsubscribe", "spam_report")

RULES = (
    "phase",
    "journey_step",
    "service_first",
    "consent",
    "cooldown",
    "daily_cap",
    "weekly_cap",
    "quiet_hours",
)


@dataclass(frozen=True)
class Contact:
    """One past outreach to the customer."""

    channel: str
    action_id: str
    at: datetime


@dataclass(frozen=True)
class ProfileSnapshot:
    """What eligibility needs to know about a customer.

    A customer never seen before is ``ProfileSnapshot()``: pre-purchase, no consent on any
    channel, no history, so only actions without a consent requirement are eligible.
    """

    phase: str = "pre_purchase"
    journey_step: str | None = None
    consent: Mapping[str, str] = field(default_factory=dict)
    open_bad_experiences: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()
    timezone: str = DEFAULT_TIMEZONE


def _frozen(mapping: Mapping[str, int | float]) -> Mapping[str, int | float]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class ContactPolicy:
    """Frequency caps, quiet hours and cooldown overrides. A value: no state, no clock.

    Caps count contacts per channel in the last 24 hours / 7 days (rolling windows). A
    channel missing from the maps uses the default cap; ``None`` means no cap. Quiet hours
    are local to the customer's time zone and apply to the channels in
    ``quiet_hours_channels`` (interruptive ones; an on-site chat invitation or an ad
    impression does not wake anyone). ``start > end`` wraps over midnight.
    """

    daily_caps: Mapping[str, int] = field(
        default_factory=lambda: _frozen({"email": 1, "zalo": 1, "sms": 1, "hotline": 2})
    )
    weekly_caps: Mapping[str, int] = field(
        default_factory=lambda: _frozen({"email": 3, "zalo": 3, "sms": 2, "ads": 20})
    )
    default_daily_cap: int | None = 2
    default_weekly_cap: int | None = 7
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    quiet_hours_channels: frozenset[str] = frozenset(
        {"email", "zalo", "messenger", "sms", "push", "hotline"}
    )
    cooldown_overrides_hours: Mapping[str, float] = field(default_factory=lambda: _frozen({}))

    def daily_cap(self, channel: str) -> int | None:
        return self.daily_caps.get(channel, self.default_daily_cap)

    def weekly_cap(self, channel: str) -> int | None:
        return self.weekly_caps.get(channel, self.default_weekly_cap)

    def cooldown(self, action: Action) -> timedelta:
        hours = self.cooldown_overrides_hours.get(action.id, action.cooldown_hours)
        return timedelta(hours=hours)

    def is_quiet(self, local: time) -> bool:
        if self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end


@dataclass(frozen=True)
class Rejection:
    rule: str
    detail: str


@dataclass(frozen=True)
class EligibilityResult:
    eligible: tuple[Action, ...]
    rejected: Mapping[str, Rejection]

    @property
    def eligible_ids(self) -> list[str]:
        return [action.id for action in self.eligible]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _check(
    action: Action,
    profile: ProfileSnapshot,
    policy: ContactPolicy,
    now: datetime,
    local_time: time,
) -> Rejection | None:
    if profile.phase not in action.phases:
        return Rejection("phase", f"not offered in phase {profile.phase}")
    if (
        action.journey_steps
        and profile.journey_step is not None
        and profile.journey_step not in action.journey_steps
    ):
        return Rejection("journey_step", f"not offered at step {profile.journey_step}")
    if profile.open_bad_experiences and not action.service_recovery:
        reasons = ", ".join(profile.open_bad_experiences)
        return Rejection("service_first", f"open bad experience ({reasons}): service first")
    if action.service_recovery and not profile.open_bad_experiences:
        return Rejection("service_first", "no open bad experience to recover from")
    if action.consent is not None:
        state = profile.consent.get(action.consent)
        if state != OPT_IN:
            return Rejection("consent", f"{action.consent} consent is {state or 'missing'}")
    cooldown = policy.cooldown(action)
    if cooldown > timedelta(0):
        last = max((c.at for c in profile.contacts if c.action_id == action.id), default=None)
        if last is not None and now - last < cooldown:
            return Rejection("cooldown", f"sent {now - last} ago, cooldown {cooldown}")
    on_channel = [c.at for c in profile.contacts if c.channel == action.channel]
    for rule, window, cap in (
        ("daily_cap", timedelta(days=1), policy.daily_cap(action.channel)),
        ("weekly_cap", timedelta(days=7), policy.weekly_cap(action.channel)),
    ):
        if cap is None:
            continue
        count = sum(1 for at in on_channel if timedelta(0) <= now - at < window) \
            if on_channel else 0
        if count >= cap:
            return Rejection(rule, f"{count} {action.channel} contact(s) in {window}, cap {cap}")
    if action.channel in policy.quiet_hours_channels and policy.is_quiet(local_time):
        return Rejection(
            "quiet_hours",
            f"{local_time:%H:%M} in {profile.timezone} is within "
            f"{policy.quiet_start:%H:%M}-{policy.quiet_end:%H:%M}",
        )
    return None


def check_eligibility(
    profile: ProfileSnapshot,
    actions: Iterable[Action],
    policy: ContactPolicy,
    now: datetime,
) -> EligibilityResult:
    """Split ``actions`` into eligible ones and rejected ones with the rule that rejected each.

    ``now`` must be timezone-aware; contact timestamps too.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_time = now.astimezone(_zone(profile.timezone)).time()
    eligible: list[Action] = []
    rejected: dict[str, Rejection] = {}
    for action in actions:
        if action.is_no_action:
            eligible.append(action)
            continue
        rejection = _check(action, profile, policy, now, local_time)
        if rejection is None:
            eligible.append(action)
        else:
            rejected[action.id] = rejection
    return EligibilityResult(tuple(eligible), MappingProxyType(rejected))
