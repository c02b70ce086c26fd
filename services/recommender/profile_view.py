"""What the decision pipeline reads from a stored profile: a contact-policy snapshot.

Pure: the stored state (the unpacked profile value, see `docs/redis-keys.md`), the request
context and ``now`` are arguments. An empty state is a customer never seen before. The
features come from `shared.features.profile_features`, the one feature function.

Phase: the request context may name it (``phase``, ``journey_step``), since the CRM often
knows best; otherwise `shared.features.infer_phase` decides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.recommender.eligibility import DEFAULT_TIMEZONE, Contact, ProfileSnapshot
from shared.actions import JOURNEY_STEPS, PHASES
from shared.features import consents, infer_phase, open_bad_experiences


def _lww_value(state: Mapping[str, Any], name: str) -> Any:
    entry = (state.get("lw") or {}).get(name)
    return entry[2] if entry else None


def contacts(state: Mapping[str, Any]) -> tuple[Contact, ...]:
    out = []
    for entry in state.get("oc") or ():
        ms, channel, action_id = entry[0], entry[1], entry[2]
        out.append(Contact(str(channel), str(action_id), datetime.fromtimestamp(ms / 1000, UTC)))
    return tuple(out)


def snapshot(
    state: Mapping[str, Any], context: Mapping[str, Any], now: datetime
) -> ProfileSnapshot:
    """The eligibility view of a customer; request context overrides phase, step, time zone."""
    phase = context.get("phase")
    if phase not in PHASES:
        phase = infer_phase(state, now)
    step = context.get("journey_step")
    timezone = context.get("timezone") or _lww_value(state, "tz") or DEFAULT_TIMEZONE
    return ProfileSnapshot(
        phase=str(phase),
        journey_step=step if step in JOURNEY_STEPS else None,
        consent=consents(state),
        open_bad_experiences=open_bad_experiences(state),
        contacts=contacts(state),
        timezone=str(timezone),
    )
