"""Settings come from RELAYCAST_* variables and flags; bad values fail with the name."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_environment_and_overrides_are_read_and_typed():
    env = {"RELAYCAST_PORT": "9001", "RELAYCAST_HEARTBEAT_INTERVAL": "2.5"}
    settings = Settings.load({"redis_url": "memory://"}, env=env)
    assert settings.port == 9001
    assert settings.heartbeat_interval == 2.5
    assert settings.redis_url == "memory://"


def test_a_flag_wins_over_the_environment():
    settings = Settings.load({"port": "9002"}, env={"RELAYCAST_PORT": "9001"})
    assert settings.port == 9002


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RELAYCAST_PORT": "eighty"}, "port"),
        ({"RELAYCAST_OUTBOX_MESSAGES": "0"}, "RELAYCAST_OUTBOX_MESSAGES"),
        ({"RELAYCAST_NAMESPACES": "not json"}, "JSON"),
    ],
)
def test_bad_values_fail_naming_the_setting(env, words):
    with pytest.raises(SettingsError, match=words):
        Settings.load(env=env)


def test_readme_documents_every_setting():
    text = README.read_text()
    missing = [f for f in Settings.fields() if f"RELAYCAST_{f.upper()}" not in text]
    assert not missing, f"README's configuration table lacks: {missing}"


@pytest.mark.parametrize("tiers", ["1m:1d,0:1h", "1m", "0:0", "soon:1h", "0.5:1h"])
def test_history_tiers_that_make_no_sense_are_refused(tiers):
    with pytest.raises(SettingsError, match="HISTORY_TIERS"):
        Settings.load({"history_tiers": tiers})
