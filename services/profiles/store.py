"""The Redis adapter of profile state: Lua scripts for atomic dedupe + merge, reads, erasure.

Every write is one Lua script on one subject's keys (one hash slot), so the dedupe check and
the state change happen together: a redelivered event finds its id in the ring and changes
nothing. Identity stitching spans two subjects (two slots in a cluster), so it is three
idempotent steps; see `link`. Redis errors become `StoreUnavailableError` here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from typing import Any

import msgpack
import redis
from redis.commands.core import Script

from services.profiles.fold import (
    DEDUPE_ID_BYTES,
    WIDE_DEDUPE_ID_BYTES,
    Delta,
    FoldedProfile,
    normalize_state,
    ring_ids,
)
from shared import redis_keys as keys
from shared.errors import StoreUnavailableError

log = logging.getLogger(__name__)

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _script_text(name: str) -> str:
    folder = resources.files("services.profiles").joinpath("lua")
    return "\n".join(folder.joinpath(f"{part}.lua").read_text("utf-8")
                     for part in ("ring", "common", name))


def pack_state(state: dict[str, Any]) -> bytes:
    return msgpack.packb(state)


def unpack_stored(packed: bytes) -> tuple[dict[str, Any], list[bytes], list[str] | None]:
    """State, dedupe ring and timeline from a stored profile value (timeline None: the value
    was written by an earlier version, which kept the timeline in a list key)."""
    raw = msgpack.unpackb(packed, raw=False, unicode_errors="surrogateescape",
                          strict_map_key=False)
    # `si` first, as the scripts read it; `sn` held 8-byte ids in earlier versions.
    ring, width = raw.pop("si", None), DEDUPE_ID_BYTES
    wide = raw.pop("sn", None)
    if ring is None:
        ring, width = wide or b"", WIDE_DEDUPE_ID_BYTES
    text = raw.pop("tl", None)
    ring_bytes = ring.encode("utf-8", "surrogateescape") if isinstance(ring, str) else ring
    seen = ring_ids(ring_bytes, width)
    timeline = None if text is None else [line for line in text.split("\n") if line]
    return normalize_state(raw), seen, timeline


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REFUSED_ERASED = "refused_erased"


@dataclass(frozen=True)
class LinkOutcome:
    anonymous_id: str
    customer_id: str
    merged: bool
    conflict_with: str | None = None


@dataclass
class ErasureReport:
    customer_id: str
    erased_at_ms: int
    existed: bool
    aliases: list[str] = field(default_factory=list)
    keys_deleted: int = 0


class ProfileStore:
    """Profiles of one base namespace; the active generation is read from Redis."""

    def __init__(
        self,
        client: redis.Redis,
        base_namespace: str,
        timeline_capacity: int = 100,
        dedupe_capacity: int = 512,
        generation: str | None = None,
    ):
        self.client = client
        self.base = base_namespace
        self.timeline_capacity = timeline_capacity
        self.dedupe_capacity = dedupe_capacity
        self._pinned_generation = generation
        self._generation: str | None = generation
        self._apply: Script = client.register_script(_script_text("apply"))
        self._loaded = False
        self._take: Script = client.register_script(_script_text("link_take"))
        self._merge: Script = client.register_script(_script_text("link_merge"))
        self._release: Script = client.register_script(_script_text("link_release"))

    # --- namespaces -------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return keys.generation_namespace(self.base, self._generation)

    def refresh_generation(self) -> str:
        """Re-read the active generation (unless pinned, as a replay is); returns the namespace."""
        if self._pinned_generation is None:
            try:
                raw = self.client.get(keys.generation_pointer_key(self.base))
            except REDIS_ERRORS as exc:
                raise StoreUnavailableError(f"Redis unreachable: {exc}") from exc
            self._generation = raw.decode() if raw else None
        return self.namespace

    def _subject_keys(self, subject: str) -> list[str]:
        ns = self.namespace
        return [keys.profile_key(ns, subject), keys.timeline_key(ns, subject),
                keys.tombstone_key(self.base, subject), keys.alias_key(ns, subject)]

    # --- writes -----------------------------------------------------------------------

    @staticmethod
    def _queue(pipe: Any, script: Script, script_keys: Sequence[str],
               args: Sequence[Any]) -> None:
        # EVALSHA straight on the pipeline: the Script wrapper asks the server whether it knows
        # the script on every pipeline, a round trip; `_pipelined` loads them once.
        pipe.execute_command("EVALSHA", script.sha, len(script_keys), *script_keys, *args)

    def _queue_apply(self, pipe: Any, delta: Delta) -> None:
        self._queue(pipe, self._apply, self._subject_keys(delta.subject), (
            delta.dedupe, pack_state(delta.state), delta.timeline_entry or "",
            self.timeline_capacity, self.dedupe_capacity, delta.occurred_ms))

    def _pipelined(self, queue: Callable[[Any], None]) -> list[Any]:
        """Runs the commands `queue` puts on a pipeline; loads the scripts again once if the
        server forgot them (it restarted, or someone flushed its scripts)."""
        for attempt in range(2):
            if not self._loaded:
                for script in (self._apply, self._take, self._merge, self._release):
                    self.client.script_load(script.script)
                self._loaded = True
            with self.client.pipeline(transaction=False) as pipe:
                queue(pipe)
                try:
                    return pipe.execute()
                except redis.exceptions.NoScriptError:
                    if attempt:
                        raise
                    self._loaded = False
        raise AssertionError("unreachable")

    def _execute_applies(self, deltas: Sequence[Delta]) -> list[Any]:
        """One pipeline; unless pinned, it starts by reading the active generation, and when a
        replay switched it meanwhile, the batch is applied again to the new one (the dedupe
        makes the first application harmless)."""
        following = self._pinned_generation is None

        def queue(pipe: Any) -> None:
            if following:
                pipe.get(keys.generation_pointer_key(self.base))
            for delta in deltas:
                self._queue_apply(pipe, delta)

        while True:
            results = self._pipelined(queue)
            if not following:
                return results
            raw, results = results[0], results[1:]
            active = raw.decode() if raw else None
            if active == self._generation:
                return results
            self._generation = active

    def apply(self, deltas: Sequence[Delta]) -> list[Outcome]:
        """Apply deltas in one pipelined round trip (plus one per redirect round), to the
        active generation."""
        outcomes: list[Outcome | None] = [None] * len(deltas)
        pending = list(enumerate(deltas))
        for _ in range(3):  # a redirect points at a customer; customers never redirect
            if not pending:
                break
            try:
                results = self._execute_applies([delta for _, delta in pending])
            except REDIS_ERRORS as exc:
                raise StoreUnavailableError(f"Redis unreachable: {exc}") from exc
            redirected = []
            for (index, delta), result in zip(pending, results, strict=True):
                code = int(result[0])
                if code == 3:
                    target = keys.customer_subject(result[1].decode())
                    redirected.append((index, _redirect(delta, target)))
                else:
                    outcomes[index] = {1: Outcome.APPLIED, 0: Outcome.DUPLICATE,
                                       2: Outcome.REFUSED_ERASED}[code]
            pending = redirected
        if pending:
            raise RuntimeError(f"alias chain too long for {pending[0][1].subject}")
        return outcomes  # type: ignore[return-value]

    def link(self, anonymous_id: str, customer_id: str, link_ms: int) -> LinkOutcome:
        """Merge an anonymous history into a customer, idempotently, in three steps.

        1. take: the alias is set (first link wins) and the anonymous history read; from now
           on events for the anonymous id are redirected to the customer;
        2. merge: the customer absorbs the history once (the alias list remembers it);
        3. release: the anonymous history is deleted, the alias stays.
        A crash between steps leaves a state the same call completes on redelivery.
        """
        return self.link_many([(anonymous_id, customer_id, link_ms)])[0]

    def link_many(self, links: Sequence[tuple[str, str, int]]) -> list[LinkOutcome]:
        """`link` for many (anonymous id, customer id, link ms): each step for every pair in one
        pipelined round trip. Pairs run in order, so of two customers claiming the same
        anonymous id in one call the first wins, as it would one call at a time."""
        if not links:
            return []
        ns = self.namespace
        anon_keys = [[keys.profile_key(ns, subject), keys.timeline_key(ns, subject),
                      keys.alias_key(ns, subject)]
                     for subject in (keys.anonymous_subject(a) for a, _, _ in links)]
        outcomes: list[LinkOutcome | None] = [None] * len(links)
        try:
            def queue_takes(pipe: Any) -> None:
                for (_, customer_id, _), names in zip(links, anon_keys, strict=True):
                    self._queue(pipe, self._take, names, [customer_id])

            taken = self._pipelined(queue_takes)
            merging = []
            for index, ((anonymous_id, customer_id, _link_ms), result) in enumerate(
                    zip(links, taken, strict=True)):
                if int(result[0]) == -1:
                    other = result[1].decode()
                    log.warning("anonymous id %s already linked to %s; not relinking to %s",
                                anonymous_id, other, customer_id)
                    outcomes[index] = LinkOutcome(anonymous_id, customer_id, False,
                                                  conflict_with=other)
                else:
                    merging.append((index, result[1], result[2:]))
            if merging:
                def queue_merges(pipe: Any) -> None:
                    for index, packed, lines in merging:
                        anonymous_id, customer_id, link_ms = links[index]
                        cust = keys.customer_subject(customer_id)
                        self._queue(pipe, self._merge,
                                    [keys.profile_key(ns, cust), keys.timeline_key(ns, cust),
                                     keys.tombstone_key(self.base, cust)],
                                    [anonymous_id, packed, self.timeline_capacity,
                                     self.dedupe_capacity, link_ms, *lines])

                def queue_releases(pipe: Any) -> None:
                    for index, _, _ in merging:
                        self._queue(pipe, self._release, anon_keys[index], [links[index][1]])

                merged = self._pipelined(queue_merges)
                self._pipelined(queue_releases)
                for (index, _, _), result in zip(merging, merged, strict=True):
                    anonymous_id, customer_id, _ = links[index]
                    outcomes[index] = LinkOutcome(anonymous_id, customer_id,
                                                  merged=int(result) == 1)
        except REDIS_ERRORS as exc:
            raise StoreUnavailableError(f"Redis unreachable: {exc}") from exc
        return outcomes  # type: ignore[return-value]

    # --- reads ------------------------------------------------------------------------

    def read(self, subject: str) -> FoldedProfile | None:
        ns = self.namespace
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.get(keys.profile_key(ns, subject))
                pipe.lrange(keys.timeline_key(ns, subject), 0, -1)
                packed, lines = pipe.execute()
        except REDIS_ERRORS as exc:
            raise StoreUnavailableError(f"Redis unreachable: {exc}") from exc
        if packed is None:
            return None
        state, seen, timeline = unpack_stored(packed)
        if timeline is None:
            timeline = [line.decode() for line in lines]
        return FoldedProfile(state=state, timeline=timeline, seen=seen)

    def alias_target(self, anonymous_id: str) -> str | None:
        raw = self.client.get(keys.alias_key(self.namespace, keys.anonymous_subject(anonymous_id)))
        return raw.decode() if raw else None

    def tombstone(self, subject: str) -> int | None:
        raw = self.client.get(keys.tombstone_key(self.base, subject))
        return int(raw) if raw else None

    def subjects(self, count: int = 1000) -> Iterator[str]:
        ns = self.namespace
        for key in self.client.scan_iter(match=keys.profile_pattern(ns), count=count):
            yield keys.subject_of_profile_key(ns, key.decode())

    def memory_usage(self, subject: str) -> int:
        ns = self.namespace
        total = 0
        for key in (keys.profile_key(ns, subject), keys.timeline_key(ns, subject)):
            total += self.client.memory_usage(key, samples=0) or 0
        return total

    # --- erasure ----------------------------------------------------------------------

    def known_namespaces(self) -> list[str]:
        """The active namespace and any generation being rebuilt (erasure reaches both)."""
        names = {self.namespace, self.base}
        for raw in self.client.smembers(f"{self.base}:generations"):
            names.add(keys.generation_namespace(self.base, raw.decode()))
        return sorted(names)

    def erase(self, customer_id: str, now_ms: int) -> ErasureReport:
        """Tombstones first (so concurrent and late events are refused), then every key."""
        cust = keys.customer_subject(customer_id)
        try:
            existing = self.read(cust)
            aliases = list(existing.state.get("al", [])) if existing else []
            subjects = [cust, *(keys.anonymous_subject(a) for a in aliases)]
            with self.client.pipeline(transaction=False) as pipe:
                for subject in subjects:
                    pipe.set(keys.tombstone_key(self.base, subject), now_ms)
                pipe.execute()
            deleted = 0
            for ns in self.known_namespaces():
                for subject in subjects:
                    deleted += int(self.client.delete(*keys.subject_keys(ns, subject)))
        except REDIS_ERRORS as exc:
            raise StoreUnavailableError(f"Redis unreachable: {exc}") from exc
        return ErasureReport(customer_id, now_ms, existing is not None, aliases, deleted)

    def export_raw(self, customer_id: str) -> dict[str, Any]:
        """Every stored value about the customer, by key (for the export endpoint)."""
        cust = keys.customer_subject(customer_id)
        profile = self.read(cust)
        aliases = list(profile.state.get("al", [])) if profile else []
        out: dict[str, Any] = {}
        ns = self.namespace
        for subject in [cust, *(keys.anonymous_subject(a) for a in aliases)]:
            for key in keys.subject_keys(ns, subject):
                kind = self.client.type(key).decode()
                if kind == "string" and key.endswith(":p"):
                    state, seen, timeline = unpack_stored(self.client.get(key))
                    out[key] = {"state": state, "dedupe_ids": [s.hex() for s in seen],
                                "timeline": timeline}
                elif kind == "string":
                    out[key] = self.client.get(key).decode()
                elif kind == "list":
                    out[key] = [x.decode() for x in self.client.lrange(key, 0, -1)]
            tomb = self.tombstone(subject)
            if tomb is not None:
                out[keys.tombstone_key(self.base, subject)] = tomb
        return out


def _redirect(delta: Delta, subject: str) -> Delta:
    return Delta(subject=subject, dedupe=delta.dedupe, state=delta.state,
                 occurred_ms=delta.occurred_ms, timeline_entry=delta.timeline_entry)
