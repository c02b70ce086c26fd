"""`touchpoint webhooks list|deliveries|retry|disable|enable`: operate outbound subscriptions."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def register(subparsers: argparse._SubParsersAction) -> None:
    webhooks = subparsers.add_parser("webhooks", help="outbound webhook subscriptions",
                                     description=__doc__)
    actions = webhooks.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="subscriptions with pending, delivered and dead counts") \
        .set_defaults(handler=_list)
    deliveries = actions.add_parser("deliveries", help="a subscription's delivery log")
    deliveries.add_argument("subscription_id")
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.set_defaults(handler=_deliveries)
    retry = actions.add_parser("retry", help="re-queue dead messages with a fresh budget")
    retry.add_argument("subscription_id")
    retry.add_argument("message_id", nargs="?", help="one message (default: every dead one)")
    retry.set_defaults(handler=_retry)
    for name, disabled in (("disable", True), ("enable", False)):
        action = actions.add_parser(name, help=f"{name} a subscription (messages stay queued)")
        action.add_argument("subscription_id")
        action.set_defaults(handler=_set_disabled, disabled=disabled)


def _store():
    import redis

    from services.outbound.store import OutboundStore
    from shared.settings import load_settings

    settings = load_settings()
    return OutboundStore(redis.Redis.from_url(settings.redis_url), settings.redis_namespace)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    store = _store()
    table = Table(title="Outbound webhook subscriptions")
    for column in ("id", "url", "events", "state", "pending", "delivered", "dead"):
        table.add_column(column)
    for sub in store.all():
        states = [m.state for m in store.messages(sub.id, limit=10_000)]
        table.add_row(sub.id, sub.url, ", ".join(sub.events),
                      "disabled" if sub.disabled else "active", str(states.count("pending")),
                      str(states.count("delivered")), str(states.count("dead")))
    Console().print(table)
    return 0


def _deliveries(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Deliveries of {args.subscription_id} (newest first)")
    for column in ("when", "message", "attempt", "status", "state", "error", "ms"):
        table.add_column(column)
    for item in _store().log(args.subscription_id, args.limit):
        table.add_row(_when(item["at"]), item["message_id"], str(item["attempt"]),
                      str(item.get("status") or "-"), item["state"], item.get("error") or "",
                      str(item.get("duration_ms", "")))
    Console().print(table)
    return 0


def _retry(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console

    store = _store()
    ids = [args.message_id] if args.message_id else \
        [m.id for m in store.messages(args.subscription_id, state="dead", limit=10_000)]
    for msg_id in ids:
        store.retry(args.subscription_id, msg_id, time.time())
    Console().print(f"re-queued {len(ids)} message(s) for {args.subscription_id}")
    return 0


def _set_disabled(args: argparse.Namespace) -> int:
    from rich.console import Console

    sub = _store().set_disabled(args.subscription_id, args.disabled)
    Console().print(f"{sub.id} is now {'disabled' if sub.disabled else 'active'}")
    return 0
