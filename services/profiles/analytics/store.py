"""The Redis adapter of the analytics aggregates: atomic, idempotent writes and raw reads.

Every event and decision is applied by one Lua script (`lua/`) that dedupes on its id and
updates every aggregate it touches in the same atomic step, so a redelivered record never
counts twice. Reads return plain dictionaries summed over days; `reader.py` turns them into
answers. Redis errors become `StoreUnavailableError` here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources

import msgpack
import redis
from redis.commands.core import Script

from services.profiles.analytics import keys
from services.profiles.analytics.facts import DecisionFacts, EventFacts
from services.profiles.fold import DEDUPE_ID_BYTES, WIDE_DEDUPE_ID_BYTES, dedupe_id, ring_ids
from shared.errors import StoreUnavailableError

DAY_MS = 86_400_000
# Events per script call: larger batches share more counter writes, but Redis serves nobody
# else while a script runs (100 events held it for 8-20 ms, 25 for 2-7 ms, at about the same
# events/s), and every profile read and write waits behind it.
EVENTS_PER_SCRIPT = 25
# Quiet journeys closed per script call, for the same reason: 200 held Redis for 10-24 ms.
JOURNEYS_PER_SCRIPT = 25


def _script_text(name: str) -> str:
    ring = resources.files("services.profiles").joinpath("lua", "ring.lua").read_text("utf-8")
    folder = resources.files("services.profiles.analytics").joinpath("lua")
    common = folder.joinpath("common.lua").read_text("utf-8")
    return "\n".join((ring, common, folder.joinpath(f"{name}.lua").read_text("utf-8")))


@dataclass(frozen=True)
class AggregateConfig:
    conversion_window_days: int = 7
    customer_ttl_days: int = 180
    half_life_days: float = 7.0

    @property
    def window_ms(self) -> int:
        return self.conversion_window_days * DAY_MS

    @property
    def ttl_s(self) -> int:
        return self.customer_ttl_days * 86_400


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=k) for k in range((end - start).days + 1)]


class AnalyticsStore:
    """Writes facts into the aggregates and reads them back, summed over a range of days."""

    def __init__(self, client: redis.Redis, namespace: str, config: AggregateConfig):
        self.client = client
        self.namespace = namespace
        self.prefix = keys.prefix(namespace)
        self.config = config
        self._events: Script = client.register_script(_script_text("record_events"))
        self._decision: Script = client.register_script(_script_text("record_decision"))
        self._close: Script = client.register_script(_script_text("close_journeys"))

    # -- writes ---------------------------------------------------------------------------

    def event_args(self, facts: EventFacts) -> list:
        """The per-event values of `record_events.lua`, in its order."""
        return [
            facts.event_id, facts.subject, facts.at_ms, facts.day, facts.touchpoint,
            facts.channel, facts.phase, facts.journey_step, int(facts.purchase), facts.value,
            "" if facts.rating is None else facts.rating, facts.decision_id, int(facts.responds),
            int(facts.touch), dedupe_id("e", facts.event_id),
        ]

    def batch_args(self, events: Sequence[EventFacts], now_s: int) -> list:
        c = self.config
        args = [self.prefix, c.window_ms, c.ttl_s, int(c.half_life_days * DAY_MS), now_s]
        for facts in events:
            args.extend(self.event_args(facts))
        return args

    def decision_args(self, facts: DecisionFacts) -> list:
        group = "h" if facts.holdout else "t"
        return [
            self.prefix, facts.decision_id, facts.subject, facts.at_ms, facts.day, facts.action,
            facts.model_version, group, self.config.window_ms, self.config.ttl_s,
        ]

    def record(
        self, events: Sequence[EventFacts], decisions: Sequence[DecisionFacts], now_s: int
    ) -> int:
        """Applies a batch in one round trip (decisions first); returns how many were new."""
        events = list(events)
        try:
            pipe = self.client.pipeline(transaction=False)
            for decision in decisions:
                self._decision(args=self.decision_args(decision), client=pipe)
            for start in range(0, len(events), EVENTS_PER_SCRIPT):
                chunk = events[start:start + EVENTS_PER_SCRIPT]
                self._events(args=self.batch_args(chunk, now_s), client=pipe)
            return int(sum(pipe.execute()))
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc

    def _quiet_cutoff(self) -> int | None:
        watermark = int(self.client.get(keys.watermark_key(self.namespace)) or 0)
        return watermark - self.config.window_ms if watermark else None

    def quiet_journeys_waiting(self) -> int:
        """Journeys quiet for longer than the window that are not closed yet."""
        try:
            cutoff = self._quiet_cutoff()
            if cutoff is None:
                return 0
            return int(self.client.zcount(keys.open_journeys_key(self.namespace), "-inf",
                                          f"({cutoff}"))
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc

    def close_quiet_journeys(self, limit: int = JOURNEYS_PER_SCRIPT,
                             max_calls: int | None = None) -> int:
        """Closes journeys quiet for longer than the window, by event time (the watermark),
        `limit` per script call so that Redis serves other clients in between; all of them,
        or at most `max_calls` calls' worth. Returns how many it closed."""
        try:
            cutoff = self._quiet_cutoff()
            if cutoff is None:
                return 0
            closed, total, calls = limit, 0, 0
            while closed == limit and (max_calls is None or calls < max_calls):
                closed = int(self._close(args=[self.prefix, cutoff, limit, self.config.ttl_s]))
                total += closed
                calls += 1
            return total
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc

    # -- reads ----------------------------------------------------------------------------

    def _hashes(self, key_names: Iterable[str]) -> list[dict[str, str]]:
        try:
            pipe = self.client.pipeline(transaction=False)
            for name in key_names:
                pipe.hgetall(name)
            return [
                {k.decode(): v.decode() for k, v in raw.items()} for raw in pipe.execute()
            ]
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc

    def summed(self, key_names: Iterable[str]) -> dict[str, float]:
        """Field-wise sum of many hashes (the same field on several days adds up)."""
        totals: dict[str, float] = defaultdict(float)
        for fields in self._hashes(key_names):
            for field, value in fields.items():
                totals[field] += float(value)
        return totals

    def attribution_sums(
        self, buckets: Sequence[str], segments: Sequence[str], view: str
    ) -> dict[str, float]:
        """The attribution sums of `view` over the buckets and segments, every shard and the
        unsharded hash of earlier versions, with coalitions by name (`v|s|<names>|<metric>`)
        whether they were written by name or by code."""
        sums = self.summed(
            name for bucket in buckets for segment in segments
            for name in keys.attribution_keys(self.namespace, bucket, segment, view)
        )
        coded = [field for field in sums if field.startswith(f"{view}|k|")]
        if not coded:
            return sums
        try:
            names = {v.decode(): k.decode() for k, v in
                     self.client.hgetall(keys.names_key(self.namespace)).items()}
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc
        for field in coded:
            members, metric = field[len(view) + 3:].rsplit("|", 1)
            decoded = ",".join(sorted(names.get(code, code) for code in members.split(",")))
            sums[f"{view}|s|{decoded}|{metric}"] += sums.pop(field)
        return sums

    def per_day(self, key_names: Sequence[str]) -> list[dict[str, str]]:
        return self._hashes(key_names)

    def reach(self, key_groups: Sequence[Sequence[str]]) -> list[int]:
        """Distinct customers over each group of HyperLogLogs (the union per group)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for group in key_groups:
                pipe.pfcount(*group)
            return [int(n) for n in pipe.execute()] if key_groups else []
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc

    def rates(self, seconds: Sequence[int]) -> list[int]:
        try:
            values = self.client.mget([keys.rate_key(self.namespace, s) for s in seconds])
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc
        return [int(v or 0) for v in values]

    def watermark_ms(self) -> int:
        try:
            return int(self.client.get(keys.watermark_key(self.namespace)) or 0)
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"analytics store: {exc}") from exc


STATE_VERSION = 2  # of the layout of `:c:<subject>:st` (`lua/common.lua`); 1 had 8-byte ids
_MAX_DEPTH = 6  # Sankey columns
_PHASES = {"a": "pre_purchase", "b": "purchase", "c": "post_purchase"}
_SEGMENTS = dict(zip("pfr", keys.SEGMENTS, strict=True))  # codes of `lua/common.lua`
_STEPS = {"n": "need_recognition", "r": "research", "d": "discovery", "c": "contact",
          "p": "purchase", "s": "after_sales", "l": "loyalty"}
_EARLIER_NAMES = {"p": "p", "at": "a", "stg": "f", "sat": "ft", "fch": "fc", "coh": "fd",
                  "lphase": "pl", "dphase": "pd", "ljourney_step": "sl",
                  "djourney_step": "sd", "lday": "ld", "ltp": "lt"}
_NUMBERS = {"p", "a", "f", "ft", "pd", "sd"}


@dataclass(frozen=True)
class StateTouch:
    at_ms: int
    touchpoint: str
    channel: str
    phase: str
    segment: str
    day: str


@dataclass(frozen=True)
class CustomerState:
    """One customer's analytics state as the scripts read it (`lua/common.lua`,
    `load_customer`): fields by their short names, days as 'YYYY-MM-DD', phases and steps by
    name, whichever layout stored it."""

    fields: dict[str, int | str]
    event_ids: list[bytes]  # dedupe ids as the scripts see them (6 bytes), oldest first
    touches: list[StateTouch]  # the open journey, in the order the touches came
    version: int  # of the stored layout; 0: long names, string values, base-10 touch times


def _day(days: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=days)).isoformat()


def _forget_unread(fields: dict) -> dict:
    """Drops what no script reads any more, as `forget_unread` in `lua/common.lua`."""
    if fields.get("f") == 3:
        for name in ("ft", "fc", "fd"):
            fields.pop(name, None)
    if fields.get("b") == 1:
        fields.pop("ld", None)
        fields.pop("lt", None)
    for last, depth in (("pl", "pd"), ("sl", "sd")):
        if fields.get(depth, -1) >= _MAX_DEPTH:
            fields.pop(last, None)
            fields[depth] = _MAX_DEPTH
    return fields


def _upgraded_fields(earlier: dict[str, str]) -> dict:
    """Fields of the layout before versions (long names, every value a string)."""
    fields: dict = {}
    for name, value in earlier.items():
        if (short := _EARLIER_NAMES.get(name)) is not None:
            fields[short] = int(value) if short in _NUMBERS else value
    if earlier.get("buy") == "1":
        fields["b"] = 1
    return _forget_unread(fields)


def _script_fields(stored: dict[str, int | str]) -> dict:
    fields = dict(stored)
    for name, names in (("pl", _PHASES), ("sl", _STEPS)):
        if name in fields:
            fields[name] = names.get(fields[name], fields[name])
    for name in ("fd", "ld"):
        if isinstance(fields.get(name), int):
            fields[name] = _day(fields[name])
    return fields


def _touch(entry: str, base: int) -> StateTouch:
    f = [part for part in entry.split("|") if part]
    at = int(f[0], base)
    return StateTouch(at, f[1], f[2], _PHASES.get(f[3], f[3]), _SEGMENTS.get(f[4], f[4]),
                      f[5] if len(f) > 5 else _day(at // DAY_MS))


def read_customer_state(client: redis.Redis, namespace: str, subject: str) -> CustomerState | None:
    packed = client.get(keys.customer_state_key(namespace, subject))
    if packed is None:
        return None
    unpacker = msgpack.Unpacker(raw=True)
    unpacker.feed(packed)
    parts = list(unpacker)
    version = parts.pop(0) if parts and parts[0] in (1, STATE_VERSION) else 0
    raw, ring, touches = [*parts, {}, b"", []][:3]
    raw = raw if isinstance(raw, dict) else {}  # an empty table packs as an array
    stored = {k.decode(): v.decode() if isinstance(v, bytes) else v for k, v in raw.items()}
    return CustomerState(
        fields=_script_fields(stored) if version else _upgraded_fields(stored),
        event_ids=ring_ids(
            ring, DEDUPE_ID_BYTES if version == STATE_VERSION else WIDE_DEDUPE_ID_BYTES),
        touches=[_touch(t.decode(), 36 if version else 10) for t in touches],
        version=version,
    )


def erase_customers(client: redis.Redis, namespace: str, subjects: list[str]) -> int:
    """Deletes the per-customer analytics state of erased people (the aggregates hold no ids)."""
    pipe = client.pipeline(transaction=True)
    for subject in subjects:
        pipe.delete(*keys.customer_state_keys(namespace, subject))
        pipe.zrem(keys.open_journeys_key(namespace), subject)
    return sum(int(n) for n in pipe.execute()[0::2])
