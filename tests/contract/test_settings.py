"""SPEC section 7 (and 10, 11): every named app setting exists under exactly that name, with its documented default."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.settings import SETTING_NAMES, Settings

SECTION_7 = [
    "AzureWebJobsStorage",
    "EvidenceStorage",
    "EvidenceStorage__tableServiceUri",
    "ARM_ENDPOINT",
    "GRAPH_ENDPOINT",
    "LOG_ANALYTICS_ENDPOINT",
    "LOG_ANALYTICS_WORKSPACE_ID",
    "ACS_ENDPOINT",
    "RESPONSE_MODE",
    "PARTNERS_FILE",
    "SCORING_RULES_FILE",
    "MAIL_SENDER",
    "ACS_CALLER_ID",
    "CALLBACK_BASE_URL",
    "SOC_TENANT_ID",
    "SOC_APP_CLIENT_ID",
    "OPERATOR_AUTH",
    "AZURE_AUTHORITY_HOST",  # section 10: azure-identity's own
]


def test_every_spec_setting_is_declared_by_its_name():
    assert set(SECTION_7) <= SETTING_NAMES


def test_documented_defaults():
    s = Settings.from_env({})
    assert s.arm_endpoint == "https://management.azure.com"
    assert s.graph_endpoint == "https://graph.microsoft.com"
    assert s.response_mode == "dry-run"
    assert s.operator_auth == "entra"


def test_documented_values_are_read():
    s = Settings.from_env(
        {
            "EvidenceStorage__tableServiceUri": "https://st.table.core.windows.net",
            "RESPONSE_MODE": "approve",
            "OPERATOR_AUTH": "function-key",
            "ARM_ENDPOINT": "https://management.usgovcloudapi.net/",
            "SOC_TENANT_ID": "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
            "SOC_APP_CLIENT_ID": "app-id",
        }
    )
    assert s.evidence_table_service_uri == "https://st.table.core.windows.net"
    assert (s.response_mode, s.operator_auth) == ("approve", "function-key")
    assert s.arm_endpoint == "https://management.usgovcloudapi.net"
    assert s.soc_tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47" and s.soc_app_client_id == "app-id"
    assert Settings.from_env({"RESPONSE_MODE": "enforce"}).response_mode == "enforce"


@pytest.mark.parametrize("name, value", [("RESPONSE_MODE", "yolo"), ("OPERATOR_AUTH", "none")])
def test_a_bad_value_names_the_setting(name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_the_documented_default_scoring_rules_ship_with_the_app():
    from shared.runtime import _resolve
    from shared.triage.catalogue import load_rules

    assert load_rules(_resolve(Settings.from_env({}).scoring_rules_file))


def test_spec_timers_and_route_auth_levels():
    """Section 2 / 11: the named timers on their schedules; ingest routes keyed per function, operator routes
    anonymous to the host (App Service Authentication and the app's own role check decide)."""
    from function_app import build_app

    timers, routes = {}, {}
    for fn in build_app().get_functions():
        trigger = fn.get_trigger()
        if trigger.get_binding_name() == "timerTrigger":
            timers[fn.get_function_name()] = trigger.schedule
        elif trigger.get_binding_name() == "httpTrigger":
            routes[trigger.route] = (trigger.auth_level.value, {str(getattr(m, "value", m)) for m in trigger.methods})
    assert timers["poll_log_analytics"] == "0 */5 * * * *"
    assert timers["anchor_evidence"] == "0 0 * * * *"
    for route in ("alerts/defender", "incidents/sentinel", "alerts"):
        level, methods = routes[route]
        assert level == "function" and "POST" in methods, route
    for route in (
        "incidents/{id}",
        "incidents/{id}/ack",
        "incidents/{id}/priority",
        "incidents/{id}/approve",
        "incidents/{id}/release",
        "incidents/{id}/call",
        "incidents/{id}/verify",
        "evidence",
        "partners/{id}/preflight",
        "approvals",
        "partners/{id}/suppressions",
    ):
        assert routes[route][0] == "anonymous", route
