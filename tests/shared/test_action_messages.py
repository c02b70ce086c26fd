"""Rendered messages read as sentences, with or without the customer's name."""

from __future__ import annotations

from shared.actions import load_actions


def test_message_starts_with_a_capital_when_the_name_is_unknown():
    catalog = load_actions()
    without_name = catalog.render("cross_sell_email", "vi", {})
    assert without_name.startswith("Bạn ơi"), without_name
    assert catalog.render("cross_sell_email", "vi", {"first_name": "Lan"}).startswith("Lan ơi")
