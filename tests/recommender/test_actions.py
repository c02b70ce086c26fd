import json
import math

import pytest

from shared.actions import (
    CHANNELS,
    NO_ACTION_ID,
    PHASES,
    ActionCatalogError,
    load_actions,
    render_template,
    template_fields,
)
from shared.actions import DEFAULT_CATALOG_PATH as ACTIONS_PATH

TOUCHPOINTS_PATH = ACTIONS_PATH.parent / "touchpoints.json"


def test_default_catalog_covers_phases_and_channels():
    catalog = load_actions()
    assert len(catalog) >= 15
    assert NO_ACTION_ID in catalog
    for phase in PHASES:
        assert sum(phase in a.phases for a in catalog.values() if not a.is_no_action) >= 3
    channels = {a.channel for a in catalog.values()}
    assert {"email", "zalo", "messenger", "sms", "ads", "hotline", "chat"} <= channels
    assert any(a.service_recovery for a in catalog.values())


def test_action_touchpoints_exist_in_touchpoint_catalog():
    if not TOUCHPOINTS_PATH.exists():
        pytest.skip("touchpoint catalog not present")
    known = {t["id"] for t in json.loads(TOUCHPOINTS_PATH.read_text())["touchpoints"]}
    missing = load_actions().touchpoint_ids() - known
    assert not missing, f"actions reference unknown touchpoints: {sorted(missing)}"


def test_feature_vector_is_numeric_and_one_hot_on_channel():
    catalog = load_actions()
    vector = catalog["flash_sale_zalo"].feature_vector()
    assert all(isinstance(v, float) and math.isfinite(v) for v in vector.values())
    assert sum(vector[f"channel={c}"] for c in CHANNELS) == 1.0
    assert vector["channel=zalo"] == 1.0
    assert vector["incentive"] == pytest.approx(0.15)
    assert vector["tag=urgency"] == 1.0


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("Hi {first_name}!", {"first_name": "Lan"}, "Hi Lan!"),
        ("Hi {first_name}!", {}, "Hi there!"),
        ("Hi {first_name}!", {"first_name": ""}, "Hi there!"),
        ("{first_name}", {"first_name": "{product_name}"}, "{product_name}"),
        ("{unknown}.", {}, "."),
        ("{{literal}}", {}, "{literal}"),
    ],
)
def test_render_template(template, values, expected):
    assert render_template(template, values, {"first_name": "there"}) == expected


@pytest.mark.parametrize("template", ["{x.__class__}", "{x[0]}", "{x!r}", "{x:>10}", "{0}"])
def test_unsafe_placeholders_are_refused(template):
    with pytest.raises(ValueError, match="plain name"):
        template_fields(template)


def test_render_in_both_languages_with_defaults():
    catalog = load_actions()
    vi = catalog.render("abandoned_cart_zalo", "vi", {"product_name": "Nồi chiên"})
    en = catalog.render("abandoned_cart_zalo", "en", {"first_name": "Lan"})
    assert vi.startswith("Bạn ơi, Nồi chiên")
    assert en.startswith("Lan, your item")
    assert catalog.render("abandoned_cart_zalo", "fr", {}).startswith("Bạn ơi")


def _user_file(tmp_path, actions, **extra):
    path = tmp_path / "actions.json"
    path.write_text(json.dumps({"actions": actions, **extra}), encoding="utf-8")
    return path


NEW_ACTION = {
    "id": "birthday_voucher",
    "label": {"vi": "Quà sinh nhật", "en": "Birthday voucher"},
    "channel": "zalo",
    "touchpoint": "zalo.outreach",
    "templates": {"vi": "Chúc mừng sinh nhật {first_name}!", "en": "Happy birthday {first_name}!"},
    "phases": ["post_purchase"],
    "consent": "zalo",
    "cost": 10000,
    "value": 100000,
    "cooldown_hours": 8760,
    "incentive": 0.1,
}


def test_user_file_adds_and_replaces_actions(tmp_path):
    replaced = {**NEW_ACTION, "id": "loyalty_reward", "cost": 1}
    catalog = load_actions(_user_file(tmp_path, [NEW_ACTION, replaced]))
    default = load_actions()
    assert len(catalog) == len(default) + 1
    assert catalog["birthday_voucher"].cooldown_hours == 8760
    assert catalog["loyalty_reward"].cost == 1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"channel": "pigeon"}, "unknown channel"),
        ({"templates": {"vi": "x"}}, "missing language"),
        ({"templates": {"vi": "{a.b}", "en": "x"}}, "plain name"),
        ({"phases": ["someday"]}, "phases"),
        ({"journey_steps": ["dreaming"]}, "unknown journey step"),
        ({"cost": -1}, "cost"),
        ({"id": "Bad Id"}, "id"),
        ({"touchpoint": "nodot"}, "touchpoint"),
    ],
)
def test_invalid_user_file_names_the_problem(tmp_path, patch, message):
    with pytest.raises(ActionCatalogError, match=message):
        load_actions(_user_file(tmp_path, [{**NEW_ACTION, **patch}]))


def test_duplicate_ids_and_bad_json_are_refused(tmp_path):
    with pytest.raises(ActionCatalogError, match="duplicate"):
        load_actions(_user_file(tmp_path, [NEW_ACTION, NEW_ACTION]))
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ActionCatalogError, match="not valid JSON"):
        load_actions(broken)
    with pytest.raises(ActionCatalogError, match="cannot read"):
        load_actions(tmp_path / "absent.json")
