"""Folding touchpoint events into profile state: pure, no I/O, no clock.

The stored state is a join-semilattice-like value: every field merges by an operation that does
not care about order (sums, max, min, last-writer-wins by event time, decayed sums rescaled to a
common reference time, bounded top-k by time). An event becomes a *delta*: the state a profile
would have if that event were its only one. Folding is `merge_state(state, delta)`, so

    fold(fold(s, a), b) == fold(fold(s, b), a)     (decayed sums: up to their 1/1024 rounding)

which makes interleaving and late events harmless, and identity stitching is the same merge
applied to the anonymous profile's state. Redelivery is handled by the dedupe ring kept next to
the state (see `store.py`). The Redis side (`lua/apply.lua`) implements the same merge on the
same packed shape; a test runs both on the same streams.

State shape (short keys: it is stored once per customer):

    n   {name: number}            sums: event counts per touchpoint, orders, revenue, ratings ...
    mx  {name: epoch ms}          maximums: last seen, last seen per channel, last purchase ...
    mn  {name: epoch ms}          minimums: first seen, first purchase
    lw  {name: [ms, tie, value]}  last writer wins by event time: consent, rating, time zone
    dr  epoch ms                  reference time of the decayed sums
    dc  {"7"|"30"|"90": {name: x}} exponentially decayed counts at time `dr`
    bx  [[ms, touchpoint], ...]   latest bad experiences (top-k by time)
    oc  [[ms, channel, action, decision], ...]  latest contacts we made (decision log)
    do  [[ms, decision, action, touchpoint], ...]  latest outcomes of our decisions
    al  [anonymous id, ...]       anonymous ids merged into this customer (sorted)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson

from shared.decisions import DecisionRecord
from shared.events import TouchpointEvent
from shared.touchpoints import TouchpointCatalog

DAY_MS = 86_400_000
DECAY_HORIZONS_DAYS = (7, 30, 90)
TOP_K = {"bx": 10, "oc": 30, "do": 10}
MAX_ALIASES = 200
# Decayed counts use time constant = window length: a steady rate of r events/day then reads
# r * window, like a window count. All events at 7/30/90 days; per phase, channel and signal
# at 30 days only (memory: each is a float per customer).
DECAY_QUANTUM = 1024
DECAYED_SIGNALS = ("engagement", "purchase", "outreach", "conversion", "negative", "bad_experience")
TIE_HEX = 8
TIME_WIDTH = 8  # base-36 digits of epoch ms: fixed width, so lines sort as plain strings
CUSTOMER_INITIATED_EXCLUDES = frozenset({"outreach", "delivery_failure"})

State = dict[str, Any]


def empty_state() -> State:
    return {}


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_epoch_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


DEDUPE_ID_BYTES = 6
WIDE_DEDUPE_ID_BYTES = 8  # earlier versions


def dedupe_id(kind: str, identifier: str) -> bytes:
    """6 bytes naming one delivery unit (`e` event, `d` decision): the first 6 of the 8 that
    earlier versions stored (`wide_dedupe_id`), so their rings read as the first 6 bytes of
    each id. With 512 ids remembered per customer, an event is taken for a duplicate by
    chance with probability 512 / 2^48, below 1 in 10^11."""
    return wide_dedupe_id(kind, identifier)[:DEDUPE_ID_BYTES]


def wide_dedupe_id(kind: str, identifier: str) -> bytes:
    """The 8-byte id of earlier versions."""
    return hashlib.blake2b(f"{kind}:{identifier}".encode(),
                           digest_size=WIDE_DEDUPE_ID_BYTES).digest()


def ring_ids(ring: bytes, width: int = DEDUPE_ID_BYTES) -> list[bytes]:
    """The ids of a stored dedupe ring, oldest first, as this version computes them: a ring of
    earlier versions (`width` 8) gives the first 6 bytes of each id (`lua/ring.lua` alike)."""
    return [ring[i : i + DEDUPE_ID_BYTES] for i in range(0, len(ring), width)]


@dataclass(frozen=True)
class Delta:
    """What one event or decision adds to one subject's profile."""

    subject: str
    dedupe: bytes
    state: State
    occurred_ms: int
    timeline_entry: str | None = None


# --- merge: the one operation the Lua script mirrors ------------------------------------------


def _bytes_key(value: Any) -> Any:
    # Lua compares strings byte-wise in our script; Python's str order on UTF-8 agrees.
    return value.encode() if isinstance(value, str) else value


def _entry_key(entry: list[Any]) -> tuple[Any, ...]:
    return tuple(_bytes_key(item) for item in entry)


def _merge_top_k(left: list, right: list, k: int) -> list:
    merged = sorted([*left, *right], key=_entry_key)
    return merged[-k:]


def quantize_decayed(value: float) -> float:
    """Decayed sums are kept to 1/1024: such a value below 16,384 fits a 4-byte float, which
    the stored msgpack then uses instead of 8 bytes."""
    return math.floor(value * DECAY_QUANTUM + 0.5) / DECAY_QUANTUM


def _decay_factor(elapsed_ms: float, horizon_days: str) -> float:
    return math.exp(-elapsed_ms / (float(horizon_days) * DAY_MS))


def _merge_decayed(a: State, b: State, out: State) -> None:
    if "dr" not in b:
        return
    if "dr" not in a:
        out["dr"], out["dc"] = b["dr"], {h: dict(v) for h, v in b["dc"].items()}
        return
    ref = max(a["dr"], b["dr"])
    merged: dict[str, dict[str, float]] = {}
    for horizon in sorted(set(a["dc"]) | set(b["dc"])):
        fa = _decay_factor(ref - a["dr"], horizon)
        fb = _decay_factor(ref - b["dr"], horizon)
        left, right = a["dc"].get(horizon, {}), b["dc"].get(horizon, {})
        merged[horizon] = {
            name: quantize_decayed(left.get(name, 0) * fa + right.get(name, 0) * fb)
            for name in sorted(set(left) | set(right))
        }
    out["dr"], out["dc"] = ref, merged


def _lww_wins(new: list, old: list | None) -> bool:
    if old is None:
        return True
    return (new[0], _bytes_key(new[1])) > (old[0], _bytes_key(old[1]))


def merge_state(a: State, b: State) -> State:
    """The merge of two states of disjoint event sets: commutative and associative."""
    out: State = {}
    sums = dict(a.get("n", {}))
    for name, value in b.get("n", {}).items():
        sums[name] = sums.get(name, 0) + value
    if sums:
        out["n"] = sums
    for field, better in (("mx", max), ("mn", min)):
        merged = dict(a.get(field, {}))
        for name, value in b.get(field, {}).items():
            merged[name] = better(merged[name], value) if name in merged else value
        if merged:
            out[field] = merged
    lww = dict(a.get("lw", {}))
    for name, value in b.get("lw", {}).items():
        if _lww_wins(value, lww.get(name)):
            lww[name] = value
    if lww:
        out["lw"] = lww
    _merge_decayed(a, b, out)
    for field, k in TOP_K.items():
        merged_list = _merge_top_k(a.get(field, []), b.get(field, []), k)
        if merged_list:
            out[field] = merged_list
    aliases = sorted(set(a.get("al", [])) | set(b.get("al", [])), key=_bytes_key)
    if aliases:
        out["al"] = aliases[:MAX_ALIASES]
    return out


# --- events and decisions as deltas -----------------------------------------------------------


def _tie(dedupe: bytes) -> str:
    return dedupe.hex()[:TIE_HEX]


def _add(sums: dict[str, float], name: str, amount: float = 1) -> None:
    sums[name] = sums.get(name, 0) + amount


def _decayed_names(channel: str, phase: str, signals: Iterable[str]) -> dict[str, dict[str, int]]:
    dc: dict[str, dict[str, int]] = {str(h): {"*": 1} for h in DECAY_HORIZONS_DAYS}
    dc["30"].update({f"p:{phase}": 1, f"c:{channel}": 1})
    for signal in signals:
        if signal in DECAYED_SIGNALS:
            dc["30"][f"s:{signal}"] = 1
    return dc


def touchpoint_count_key(touchpoint: str, channel: str | None, phase: str | None) -> str:
    """`t:<touchpoint>`, with `|<channel>|<phase>` only when the event overrode its facets;
    channel, phase and signal counts are derived from these through the catalog on read."""
    if channel is None and phase is None:
        return f"t:{touchpoint}"
    return f"t:{touchpoint}|{channel or ''}|{phase or ''}"


def parse_count_key(key: str) -> tuple[str, str | None, str | None]:
    touchpoint, _, rest = key[2:].partition("|")
    if not rest:
        return touchpoint, None, None
    channel, _, phase = rest.partition("|")
    return touchpoint, channel or None, phase or None


def encode_time(ms: int) -> str:
    return _base36(ms).rjust(TIME_WIDTH, "0")


def decode_time(text: str) -> int:
    return int(text, 36)


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


# Extras that are numbers; every other extra is text.
NUMBER_EXTRAS = frozenset({"v", "r", "nps"})
_ESCAPES = (("%", "%25"), ("|", "%7C"), ("\n", "%0A"), ("\r", "%0D"))


def _extra_text(name: str, value: Any) -> str:
    text = str(value)
    if name not in NUMBER_EXTRAS:
        for char, escape in _ESCAPES:
            text = text.replace(char, escape)
    return f"{name}={text}"


def _extra_value(name: str, text: str) -> Any:
    if name in NUMBER_EXTRAS:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    return unquote(text) if "%" in text else text


def timeline_entry(event: TouchpointEvent, catalog: TouchpointCatalog,
                   ms: int | None = None) -> str:
    """`<8 base-36 digits of epoch ms>|<touchpoint>[|<name>=<value>...]`: sorts by time as a
    string. Text values escape `%`, `|` and line breaks as `%25`, `%7C`, `%0A`, `%0D`.

    Extras hold the context worth showing, and facets only when the event overrode them.
    """
    entry = catalog.get(event.touchpoint)
    extras: dict[str, Any] = {}
    if entry is None or event.channel not in (None, entry.channel):
        extras["ch"] = event.channel
    if event.phase is not None and (entry is None or event.phase != entry.phase):
        extras["ph"] = str(event.phase)
    step = event.journey_step
    if step is not None and (entry is None or step != entry.journey_step):
        extras["st"] = str(step)
    context = event.context
    for short, value in (
        ("cp", context.campaign), ("nd", context.need), ("pl", context.placement),
        ("dc", context.decision_id), ("ac", context.action_id), ("v", event.value),
        ("cu", event.currency), ("r", event.rating), ("nps", event.nps), ("se", event.sentiment),
    ):
        if value is not None:
            extras[short] = int(value) if isinstance(value, float) and value.is_integer() else value
    ms = epoch_ms(event.occurred_at) if ms is None else ms
    line = f"{encode_time(ms)}|{event.touchpoint}"
    for name in sorted(extras):
        line += "|" + _extra_text(name, extras[name])
    return line


def parse_timeline_entry(line: str) -> dict[str, Any]:
    """Either form: extras as `|name=value` parts, or as one JSON object (earlier versions)."""
    ms, _, rest = line.partition("|")
    touchpoint, _, extras = rest.partition("|")
    parsed: dict[str, Any] = {"ms": decode_time(ms), "touchpoint": touchpoint}
    if extras.startswith("{"):
        return {**parsed, **orjson.loads(extras)}
    if extras:
        for part in extras.split("|"):
            name, _, text = part.partition("=")
            parsed[name] = _extra_value(name, text)
    return parsed


def event_state(event: TouchpointEvent, catalog: TouchpointCatalog, dedupe: bytes,
                ms: int | None = None) -> State:
    """The state of a profile whose only event is `event`."""
    entry = catalog.get(event.touchpoint)
    channel = event.channel or (entry.channel if entry else event.touchpoint.split(".", 1)[0])
    phase = str(event.phase or (entry.phase if entry else "pre_purchase"))
    signals = sorted(entry.signals) if entry else []
    ms = epoch_ms(event.occurred_at) if ms is None else ms
    tie = _tie(dedupe)
    overridden_channel = channel if entry is None or channel != entry.channel else None
    overridden_phase = phase if entry is None or phase != entry.phase else None
    sums: dict[str, float] = {
        "ev": 1, touchpoint_count_key(event.touchpoint, overridden_channel, overridden_phase): 1
    }
    mx: dict[str, int] = {"ls": ms}
    mn: dict[str, int] = {"fs": ms}
    lww: dict[str, list] = {}
    state: State = {"n": sums, "mx": mx, "mn": mn, "lw": lww, "dr": ms,
                    "dc": _decayed_names(channel, phase, signals)}
    if CUSTOMER_INITIATED_EXCLUDES.isdisjoint(signals):
        mx[f"lc:{channel}"] = ms
    if "outreach" in signals:
        mx[f"lo:{channel}"] = ms
    if "purchase" in signals:
        _add(sums, "orders")
        mx["lp"] = ms
        mn["fp"] = ms
        if event.value is not None and event.currency:
            _add(sums, f"rv:{event.currency}", event.value)
            _add(sums, f"or:{event.currency}")
    if "refund" in signals:
        _add(sums, "refunds")
        if event.value is not None and event.currency:
            _add(sums, f"rv:{event.currency}", -event.value)
    if "bad_experience" in signals:
        mx["lb"] = ms
        state["bx"] = [[ms, event.touchpoint]]
    if "resolution" in signals:
        mx["lr"] = ms
    if event.rating is not None:
        _add(sums, "rs", event.rating)
        _add(sums, "rn")
        lww["rt"] = [ms, tie, event.rating]
    if event.nps is not None:
        _add(sums, "ns", event.nps)
        _add(sums, "nn")
        _add(sums, "npp" if event.nps >= 9 else "npd" if event.nps <= 6 else "npn")
        lww["np"] = [ms, tie, event.nps]
    if event.sentiment is not None:
        _add(sums, f"se:{event.sentiment}")
        lww["se"] = [ms, tie, event.sentiment]
    consent = dict(event.consent or {})
    if entry is not None and entry.consent_effect is not None:
        consent.setdefault(entry.consent_effect.channel, entry.consent_effect.status)
    for consent_channel, status in consent.items():
        lww[f"cs:{consent_channel}"] = [ms, tie, str(status)]
    if event.context.timezone:
        lww["tz"] = [ms, tie, event.context.timezone]
    if event.context.decision_id:
        _add(sums, "dco")
        state["do"] = [[ms, event.context.decision_id, event.context.action_id or "",
                        event.touchpoint]]
    if not lww:
        del state["lw"]
    return state


def event_delta(event: TouchpointEvent, catalog: TouchpointCatalog, subject: str) -> Delta:
    dedupe = dedupe_id("e", event.event_id)
    ms = epoch_ms(event.occurred_at)
    return Delta(
        subject=subject,
        dedupe=dedupe,
        state=event_state(event, catalog, dedupe, ms),
        occurred_ms=ms,
        timeline_entry=timeline_entry(event, catalog, ms),
    )


def decision_delta(decision: DecisionRecord, subject: str) -> Delta | None:
    """Our own outreach: every action of a decision outside the holdout is one contact."""
    if decision.holdout or not decision.actions:
        return None
    ms = epoch_ms(decision.decided_at)
    sums: dict[str, float] = {}
    mx: dict[str, int] = {}
    contacts = []
    for action in decision.actions:
        _add(sums, f"oc:{action.channel}")
        _add(sums, f"oa:{action.action_id}")
        mx[f"oc:{action.channel}"] = ms
        mx[f"oa:{action.action_id}"] = ms
        contacts.append([ms, action.channel, action.action_id, decision.decision_id])
    _add(sums, "contacts", len(decision.actions))
    state: State = {"n": sums, "mx": mx, "oc": sorted(contacts, key=_entry_key)}
    return Delta(subject=subject, dedupe=dedupe_id("d", decision.decision_id), state=state,
                 occurred_ms=ms)


# --- the pure fold, as the Redis path applies it ------------------------------------------------


@dataclass
class FoldedProfile:
    """State, timeline and dedupe ring of one subject: the in-memory twin of the Redis keys."""

    state: State
    timeline: list[str]
    seen: list[bytes]


def insert_timeline(timeline: list[str], line: str, capacity: int) -> list[str]:
    """Keep the `capacity` latest entries in time order (string order of the entries)."""
    if len(timeline) >= capacity and line.encode() <= timeline[0].encode():
        return timeline
    merged = sorted([*timeline, line], key=str.encode)
    return merged[-capacity:]


def fold(
    profile: FoldedProfile | None, delta: Delta, timeline_capacity: int = 100,
    dedupe_capacity: int = 512,
) -> tuple[FoldedProfile, bool]:
    """Apply one delta; returns the new profile and whether it counted (False = duplicate)."""
    current = profile or FoldedProfile(state={}, timeline=[], seen=[])
    if delta.dedupe in current.seen:
        return current, False
    timeline = current.timeline
    if delta.timeline_entry is not None:
        timeline = insert_timeline(timeline, delta.timeline_entry, timeline_capacity)
    seen = [*current.seen, delta.dedupe][-dedupe_capacity:]
    return FoldedProfile(merge_state(current.state, delta.state), timeline, seen), True


def fold_all(
    deltas: Iterable[Delta], timeline_capacity: int = 100, dedupe_capacity: int = 512
) -> dict[str, FoldedProfile]:
    """A clean fold of a stream, by subject (reference for tests and replays)."""
    profiles: dict[str, FoldedProfile] = {}
    for delta in deltas:
        profiles[delta.subject], _ = fold(
            profiles.get(delta.subject), delta, timeline_capacity, dedupe_capacity
        )
    return profiles


def merge_profiles(
    customer: FoldedProfile, anonymous: FoldedProfile, anonymous_id: str,
    timeline_capacity: int = 100, dedupe_capacity: int = 512,
) -> FoldedProfile:
    """Identity stitching: the anonymous history joins the customer's."""
    if anonymous_id in customer.state.get("al", []):
        return customer
    state = merge_state(customer.state, {**anonymous.state, "al": [anonymous_id]})
    timeline = sorted([*customer.timeline, *anonymous.timeline], key=str.encode)
    seen = [*customer.seen, *anonymous.seen][-dedupe_capacity:]
    return FoldedProfile(state, timeline[-timeline_capacity:], seen)


def normalize_state(state: Mapping[str, Any]) -> State:
    """Packed state read back from Redis: empty maps come back as empty lists."""
    out: State = {}
    for key, value in state.items():
        if key in ("n", "mx", "mn", "lw") and value == []:
            continue
        if key == "dc":
            value = {h: (v if v != [] else {}) for h, v in (value or {}).items()} if value else {}
        out[key] = value
    return out
