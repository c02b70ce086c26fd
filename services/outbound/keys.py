"""The Redis keys of outbound webhooks: the one place they are built.

All keys share the hash tag `{outbound}`, so the Lua scripts that touch several of them run on
one slot of a Redis Cluster.

    <ns>:{outbound}:subscriptions             set     subscription ids
    <ns>:{outbound}:sub:<sub>                 hash    url, secret, events, description,
                                                      created_at, disabled
    <ns>:{outbound}:msg:<sub>:<msg>           hash    type, body, state, attempts, created_at,
                                                      next_at, last_status, last_error
    <ns>:{outbound}:msgs:<sub>                zset    message ids by creation time
    <ns>:{outbound}:due                       zset    "<sub>:<msg>" by next attempt time
    <ns>:{outbound}:log:<sub>                 list    delivery attempts, newest first, bounded
"""

from __future__ import annotations


def _base(namespace: str) -> str:
    return f"{namespace}:{{outbound}}"


def subscriptions(namespace: str) -> str:
    return f"{_base(namespace)}:subscriptions"


def subscription(namespace: str, sub_id: str) -> str:
    return f"{_base(namespace)}:sub:{sub_id}"


def message(namespace: str, sub_id: str, msg_id: str) -> str:
    return f"{_base(namespace)}:msg:{sub_id}:{msg_id}"


def messages(namespace: str, sub_id: str) -> str:
    return f"{_base(namespace)}:msgs:{sub_id}"


def due(namespace: str) -> str:
    return f"{_base(namespace)}:due"


def log(namespace: str, sub_id: str) -> str:
    return f"{_base(namespace)}:log:{sub_id}"
