"""`touchpoint keys create|list|disable|enable`: manage API keys in the key store file.

The store is `API_KEYS_FILE`, else `<DATA_DIR>/api-keys.json` (the file `touchpoint run` uses).
Running services pick up changes without a restart.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="create, list and disable API keys",
                                 description=__doc__)
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--name", required=True, help="who or what uses the key, e.g. hubspot")
    create.add_argument("--scopes", required=True,
                        help="comma-separated: events:write, recommendations:read, "
                             "profiles:read, profiles:erase, admin, webhooks:<provider>")
    create.add_argument("--file", type=Path, help="key store (default: API_KEYS_FILE)")
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--file", type=Path)
    listing.set_defaults(handler=_list)
    for name, disabled in (("disable", True), ("enable", False)):
        action = actions.add_parser(name, help=f"{name} a key by its id")
        action.add_argument("key_id", help="the 12 hex digits after tp_")
        action.add_argument("--file", type=Path)
        action.set_defaults(handler=_set_disabled, disabled=disabled)


def _store(args: argparse.Namespace):
    from shared.api_keys import DEV_STORE_FILE, KeyStore
    from shared.settings import load_settings

    settings = load_settings()
    path = args.file or settings.api_keys_file or settings.data_dir / DEV_STORE_FILE
    pepper = settings.api_key_pepper.get_secret_value().encode() \
        if settings.api_key_pepper else None
    return KeyStore(path, pepper)


def _create(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from rich.console import Console

    console = Console()
    store = _store(args)
    try:
        key, full = store.create(args.name, args.scopes.split(","), datetime.now(UTC))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    console.print(f"created key [bold]{key.id}[/bold] ({key.name}) with scopes "
                  f"{', '.join(key.scopes)} in {store.path}")
    console.print("the key (shown only now; store it in your tool's secret settings):")
    print(full)
    return 0


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    store = _store(args)
    table = Table(title=f"API keys in {store.path}")
    for column in ("id", "name", "scopes", "created", "state"):
        table.add_column(column)
    for key in sorted(store.keys().values(), key=lambda k: k.created_at):
        table.add_row(key.id, key.name, ", ".join(key.scopes), key.created_at,
                      "disabled" if key.disabled else "active")
    Console().print(table)
    return 0


def _set_disabled(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    try:
        key = _store(args).set_disabled(args.key_id, args.disabled)
    except KeyError:
        console.print(f"[red]no key with id {args.key_id}[/red]")
        return 1
    console.print(f"key {key.id} ({key.name}) is now {'disabled' if key.disabled else 'active'}")
    return 0
