"""The Redis key schema of customer profiles: the one place key names are built.

Pure string functions; `docs/redis-keys.md` pins the format as a contract. Every key of one
subject carries the subject in a Redis Cluster hash tag (`{c:c-1001}`), so the keys a Lua
script touches together hash to one slot.

A *subject* is `c:<customer_id>` for a known customer or `a:<anonymous_id>` for a visitor;
the prefix keeps the two id spaces apart. Profile keys live under a *generation* namespace
(`<base>` or `<base>.<generation>`), so a replay can rebuild every profile next to the live
ones and switch over by changing one pointer. Erasure tombstones and the pointer live under
the base namespace, so they survive a switch-over.

    <ns>:{<subject>}:p         string  packed profile state (msgpack), incl. dedupe ring
                                       and timeline
    <ns>:{<subject>}:t         list    timeline as earlier versions kept it (moved into
                                       the profile value at the next write)
    <ns>:{a:<anon>}:alias      string  customer id an anonymous id was merged into
    <base>:{<subject>}:erased  string  erasure time (epoch ms): later-arriving events for
                                       anything that happened before it are refused
    <base>:generation          string  the active generation ("" or absent = base itself)
"""

from __future__ import annotations

CUSTOMER = "c"
ANONYMOUS = "a"


def customer_subject(customer_id: str) -> str:
    return f"{CUSTOMER}:{customer_id}"


def anonymous_subject(anonymous_id: str) -> str:
    return f"{ANONYMOUS}:{anonymous_id}"


def subject_id(subject: str) -> str:
    """The bare id of a subject (`c:c-1001` -> `c-1001`)."""
    return subject.split(":", 1)[1]


def is_anonymous(subject: str) -> bool:
    return subject.startswith(f"{ANONYMOUS}:")


def generation_namespace(base: str, generation: str | None) -> str:
    """The namespace profile keys of `generation` live in (`tp`, `tp.r20270120`)."""
    return f"{base}.{generation}" if generation else base


def profile_key(namespace: str, subject: str) -> str:
    return f"{namespace}:{{{subject}}}:p"


def timeline_key(namespace: str, subject: str) -> str:
    return f"{namespace}:{{{subject}}}:t"


def alias_key(namespace: str, subject: str) -> str:
    return f"{namespace}:{{{subject}}}:alias"


def tombstone_key(base: str, subject: str) -> str:
    return f"{base}:{{{subject}}}:erased"


def generation_pointer_key(base: str) -> str:
    return f"{base}:generation"


def subject_keys(namespace: str, subject: str) -> list[str]:
    """Every key holding data about `subject` in one namespace (for export and erasure)."""
    return [
        profile_key(namespace, subject),
        timeline_key(namespace, subject),
        alias_key(namespace, subject),
    ]


def profile_pattern(namespace: str) -> str:
    """A SCAN pattern matching every profile state key of a namespace."""
    return f"{namespace}:{{*}}:p"


def subject_of_profile_key(namespace: str, key: str) -> str:
    """Inverse of `profile_key`."""
    prefix = f"{namespace}:{{"
    if not (key.startswith(prefix) and key.endswith("}:p")):
        raise ValueError(f"not a profile key of namespace {namespace!r}: {key!r}")
    return key[len(prefix) : -len("}:p")]
