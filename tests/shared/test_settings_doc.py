"""Every setting is documented, in the README and in docs/configuration.md, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings
from shared.settings_doc import BEGIN, END, replace_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("document", ["README.md", "docs/configuration.md"])
def test_configuration_table_is_current(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{document} lacks the settings table markers"
    assert text == replace_table(text), (
        f"{document} is out of date: run `touchpoint config --write`")


def test_every_setting_has_a_description():
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []


def test_bad_values_fail_fast():
    from pydantic import ValidationError

    for bad in ({"kafka_bootstrap_servers": "no-port"}, {"kafka_acks": "2"},
                {"max_batch_events": 0}, {"log_level": "LOUD"}):
        with pytest.raises(ValidationError):
            Settings(**bad)
