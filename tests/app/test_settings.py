"""App settings are validated at load with a clear error naming the setting."""

import json
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_safe():
    s = Settings.from_env({})
    assert s.response_mode == "dry-run"
    assert s.arm_endpoint == "https://management.azure.com" and s.graph_endpoint == "https://graph.microsoft.com"


@pytest.mark.parametrize(
    "env, name",
    [
        ({"RESPONSE_MODE": "yolo"}, "RESPONSE_MODE"),
        ({"GROUPING_WINDOW_MINUTES": "ten"}, "GROUPING_WINDOW_MINUTES"),
        ({"BLAST_RADIUS_MAX": "-1"}, "BLAST_RADIUS_MAX"),
    ],
)
def test_bad_values_name_the_setting(env, name):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env(env)


def test_endpoints_lose_trailing_slashes_and_mode_is_case_insensitive():
    s = Settings.from_env({"ARM_ENDPOINT": "https://management.usgovcloudapi.net/", "RESPONSE_MODE": "Enforce"})
    assert s.arm_endpoint == "https://management.usgovcloudapi.net" and s.response_mode == "enforce"


def test_local_settings_example_lists_every_setting_the_code_reads():
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    missing = [
        s.name
        for s in SETTINGS
        if s.name not in values and s.name not in ("EvidenceStorage__tableServiceUri", "AZURE_CLIENT_ID")
    ]
    assert missing == []
