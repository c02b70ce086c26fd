"""Subscriptions, messages and the delivery log in Redis. Redis errors become
`StoreUnavailableError` here. Times are epoch seconds passed in by the caller."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from services.outbound import keys
from services.outbound.messages import Message
from shared.errors import NotFoundError, StoreUnavailableError

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
LOG_LENGTH = 1000

# Enqueue once: a message already known (Kafka redelivered the decision) is left alone.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'type', ARGV[1], 'body', ARGV[2], 'state', 'pending',
           'attempts', 0, 'created_at', ARGV[3], 'next_at', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
return 1
"""
# Claim due messages with a lease: a worker that dies mid-delivery loses them for `lease` only.
_CLAIM = """
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(items) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return items
"""


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    secret: str
    events: list[str]
    description: str
    created_at: float
    disabled: bool

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": self.events,
                "description": self.description, "created_at": self.created_at,
                "disabled": self.disabled}


@dataclass(frozen=True)
class StoredMessage:
    subscription_id: str
    id: str
    type: str
    body: bytes
    state: str  # pending, delivered, dead
    attempts: int
    created_at: float
    next_at: float
    last_status: int | None
    last_error: str | None


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class OutboundStore:
    def __init__(self, client: redis.Redis, namespace: str):
        self.client = client
        self.ns = namespace
        self._enqueue = client.register_script(_ENQUEUE)
        self._claim = client.register_script(_CLAIM)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except REDIS_ERRORS as exc:
            raise StoreUnavailableError(f"Redis unreachable: {exc}") from exc

    # --- subscriptions -----------------------------------------------------------------
    def create(self, url: str, secret: str, events: list[str], description: str,
               now: float) -> Subscription:
        sub = Subscription("sub_" + secrets.token_hex(8), url, secret, events, description,
                           now, False)
        with self.client.pipeline() as pipe:
            pipe.hset(keys.subscription(self.ns, sub.id), mapping={
                "url": url, "secret": secret, "events": orjson.dumps(events),
                "description": description, "created_at": now, "disabled": 0})
            pipe.sadd(keys.subscriptions(self.ns), sub.id)
            self._call(pipe.execute)
        return sub

    def get(self, sub_id: str) -> Subscription:
        raw = self._call(self.client.hgetall, keys.subscription(self.ns, sub_id))
        if not raw:
            raise NotFoundError(f"no subscription {sub_id!r}")
        data = {k.decode(): v for k, v in raw.items()}
        return Subscription(sub_id, _text(data["url"]), _text(data["secret"]),
                            orjson.loads(data["events"]), _text(data.get("description")) or "",
                            float(data["created_at"]), data.get("disabled") == b"1")

    def all(self) -> list[Subscription]:
        ids = sorted(_text(i) for i in self._call(self.client.smembers,
                                                   keys.subscriptions(self.ns)))
        return [self.get(i) for i in ids]

    def set_disabled(self, sub_id: str, disabled: bool) -> Subscription:
        self.get(sub_id)
        self._call(self.client.hset, keys.subscription(self.ns, sub_id), "disabled",
                   int(disabled))
        return self.get(sub_id)

    def delete(self, sub_id: str) -> None:
        self.get(sub_id)
        message_ids = self._call(self.client.zrange, keys.messages(self.ns, sub_id), 0, -1)
        with self.client.pipeline() as pipe:
            for msg_id in message_ids:
                pipe.delete(keys.message(self.ns, sub_id, _text(msg_id)))
                pipe.zrem(keys.due(self.ns), f"{sub_id}:{_text(msg_id)}")
            pipe.delete(keys.subscription(self.ns, sub_id), keys.messages(self.ns, sub_id),
                        keys.log(self.ns, sub_id))
            pipe.srem(keys.subscriptions(self.ns), sub_id)
            self._call(pipe.execute)

    # --- messages ----------------------------------------------------------------------
    def enqueue(self, sub_id: str, message: Message, now: float) -> bool:
        """True when new; False when this message was already queued for the subscriber."""
        return bool(self._call(self._enqueue, keys=[
            keys.message(self.ns, sub_id, message.id), keys.due(self.ns),
            keys.messages(self.ns, sub_id)],
            args=[message.type, message.body, now, f"{sub_id}:{message.id}", message.id]))

    def claim_due(self, now: float, lease_s: float, limit: int = 50) -> list[tuple[str, str]]:
        members = self._call(self._claim, keys=[keys.due(self.ns)],
                             args=[now, now + lease_s, limit])
        return [tuple(_text(m).split(":", 1)) for m in members]  # type: ignore[misc]

    def message(self, sub_id: str, msg_id: str) -> StoredMessage:
        raw = self._call(self.client.hgetall, keys.message(self.ns, sub_id, msg_id))
        if not raw:
            raise NotFoundError(f"no message {msg_id!r} for {sub_id!r}")
        data = {k.decode(): v for k, v in raw.items()}
        status = _text(data.get("last_status"))
        return StoredMessage(sub_id, msg_id, _text(data["type"]), data["body"],
                             _text(data["state"]), int(data["attempts"]),
                             float(data["created_at"]), float(data["next_at"]),
                             int(status) if status else None, _text(data.get("last_error")))

    def messages(self, sub_id: str, state: str | None = None,
                 limit: int = 100) -> list[StoredMessage]:
        ids = self._call(self.client.zrevrange, keys.messages(self.ns, sub_id), 0, -1)
        found = []
        for msg_id in ids:
            stored = self.message(sub_id, _text(msg_id))
            if state is None or stored.state == state:
                found.append(stored)
            if len(found) >= limit:
                break
        return found

    def record_attempt(self, sub_id: str, msg_id: str, attempt: dict[str, Any], state: str,
                       next_at: float | None) -> None:
        """Logs one attempt and moves the message to its new state atomically."""
        key = keys.message(self.ns, sub_id, msg_id)
        member = f"{sub_id}:{msg_id}"
        with self.client.pipeline() as pipe:
            pipe.hset(key, mapping={
                "state": state, "attempts": attempt["attempt"],
                "last_status": attempt.get("status") or "",
                "last_error": attempt.get("error") or "",
                "next_at": next_at if next_at is not None else attempt["at"]})
            if next_at is None:
                pipe.zrem(keys.due(self.ns), member)
            else:
                pipe.zadd(keys.due(self.ns), {member: next_at})
            pipe.lpush(keys.log(self.ns, sub_id), orjson.dumps({**attempt, "message_id": msg_id,
                                                                 "state": state}))
            pipe.ltrim(keys.log(self.ns, sub_id), 0, LOG_LENGTH - 1)
            self._call(pipe.execute)

    def retry(self, sub_id: str, msg_id: str, now: float) -> StoredMessage:
        """Puts a dead (or any) message back in the queue with a fresh retry budget."""
        self.message(sub_id, msg_id)
        with self.client.pipeline() as pipe:
            pipe.hset(keys.message(self.ns, sub_id, msg_id),
                      mapping={"state": "pending", "attempts": 0, "next_at": now})
            pipe.zadd(keys.due(self.ns), {f"{sub_id}:{msg_id}": now})
            self._call(pipe.execute)
        return self.message(sub_id, msg_id)

    def postpone(self, sub_id: str, msg_id: str, until: float) -> None:
        self._call(self.client.zadd, keys.due(self.ns), {f"{sub_id}:{msg_id}": until})

    def drop_due(self, sub_id: str, msg_id: str) -> None:
        self._call(self.client.zrem, keys.due(self.ns), f"{sub_id}:{msg_id}")

    def log(self, sub_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return [orjson.loads(item) for item in
                self._call(self.client.lrange, keys.log(self.ns, sub_id), 0, limit - 1)]
