"""Normalisation of every payload shape into Alert (pure)."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.errors import ValidationError
from shared.intake import defender, generic, log_analytics, sentinel
from shared.models import EntityKind

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def load(name):
    return json.loads((SAMPLES / name).read_text())


def test_defender_arm_shape():
    a = defender.parse(load("defender-alert-arm.json"), NOW)
    assert a.source == "defender"
    assert a.dedupe_keys == ["alert:2516892455221183920_5c3d8e2a-9f4b-4c1e-8d7a-1b2c3d4e5f60"]
    assert a.severity == "High" and a.alert_type == "VM_CurrencyMining" and a.tactics == ["Impact"]
    assert a.subscription_ids == ["11111111-2222-3333-4444-555555555555"]
    assert a.tenant_ids == ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
    hosts = [e for e in a.entities if e.kind == EntityKind.HOST]
    assert len(hosts) == 1 and hosts[0].azure_resource_id.endswith("/virtualMachines/vm-web-01")
    assert {e.kind for e in a.entities} >= {EntityKind.HOST, EntityKind.IP, EntityKind.ACCOUNT, EntityKind.PROCESS}
    # 7-digit fractional seconds, as Defender sends them
    assert a.observed_at == datetime(2026, 11, 20, 9, 12, 33, 123456, tzinfo=UTC)


def test_defender_connector_shape():
    a = defender.parse(load("defender-alert-connector.json"), NOW)
    assert a.source_id == "2516892101887766554_7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
    assert a.severity == "Medium" and a.alert_type == "VM_LoginBruteForceSuccess"
    assert a.resource_ids[0].endswith("/virtualMachines/vm-jump-02")
    assert [e.address for e in a.entities if e.kind == EntityKind.IP] == ["198.51.100.23"]
    assert a.observed_at == datetime(2026, 11, 21, 2, 41, 7, tzinfo=UTC)


def test_sentinel_trigger_and_bare_resource_are_the_same_alert():
    trigger = load("sentinel-incident-trigger.json")
    a = sentinel.parse(trigger, NOW)
    b = sentinel.parse(trigger["object"], NOW)
    assert (
        a.dedupe_keys
        == b.dedupe_keys
        == [
            "sentinel:3f2e1d0c-b9a8-4765-8432-10fedcba9876",
            "alert:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            "alert:b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
        ]
    )
    assert a.tactics == ["InitialAccess", "Exfiltration"]
    account = next(e for e in a.entities if e.kind == EntityKind.ACCOUNT)
    assert account.upn == "jordan.lee@contoso.example"
    assert account.object_id == "8e7d6c5b-4a39-4281-b0f1-e2d3c4b5a697"
    assert a.workspace_id == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert a.subscription_ids == ["11111111-2222-3333-4444-555555555555"]


def test_generic_alert_keeps_explicit_score():
    a = generic.parse(load("generic-alert.json"), NOW)
    assert a.explicit_score == 7
    assert a.dedupe_keys == ["generic:fortigate:fgt-ips-2026-11-21-000918"]
    assert {e.kind for e in a.entities} == {EntityKind.NETWORK_DEVICE, EntityKind.IP}


def test_log_analytics_alert_row():
    resp = load("log-analytics-query-response.json")["tables"][0]
    row = dict(zip([c["name"] for c in resp["columns"]], resp["rows"][0], strict=True))
    a = log_analytics.parse_alert_row(row, NOW)
    assert a.dedupe_keys == ["alert:c8f1e2d3-4b5a-4968-8776-a5b4c3d2e1f0"]
    assert a.workspace_id == "0f8fad5b-d9cb-469f-a165-70867728950e"
    kinds = {e.kind: e for e in a.entities}
    assert kinds[EntityKind.ACCOUNT].upn == "svc-deploy@contoso.example"
    assert kinds[EntityKind.HOST].azure_resource_id.endswith("/vm-app-03")


def test_log_analytics_incident_row_keys_match_the_pushed_incident():
    row = {
        "IncidentName": "3F2E1D0C-B9A8-4765-8432-10FEDCBA9876",
        "Title": "x",
        "Severity": "High",
        "AlertIds": json.dumps(["A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"]),
        "CreatedTime": "2026-11-21T13:25:02Z",
    }
    a = log_analytics.parse_incident_row(row, NOW)
    pushed = sentinel.parse(load("sentinel-incident-trigger.json"), NOW)
    assert a.dedupe_keys[0] == pushed.dedupe_keys[0]
    assert a.dedupe_keys[1] in pushed.dedupe_keys


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["properties"].pop("alertDisplayName"), "properties.alertDisplayName"),
        (lambda d: d["properties"].__setitem__("severity", "Extreme"), "properties.severity"),
        (lambda d: d["properties"].__setitem__("severity", 5), "properties.severity"),
        (lambda d: d["properties"].__setitem__("entities", "nope"), "properties.entities"),
        (lambda d: d["properties"].__setitem__("timeGeneratedUtc", "yesterday"), "properties.timeGeneratedUtc"),
    ],
)
def test_defender_invalid_fields_are_named(mutate, field):
    d = copy.deepcopy(load("defender-alert-arm.json"))
    mutate(d)
    with pytest.raises(ValidationError) as exc:
        defender.parse(d, NOW)
    assert field in [x["field"] for x in exc.value.details]


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.pop("score"), "score"),
        (lambda d: d.__setitem__("score", 11), "score"),
        (lambda d: d.__setitem__("score", "7"), "score"),
        (lambda d: d.__setitem__("score", True), "score"),
        (lambda d: d.__setitem__("observedAt", "2026-11-21T18:04:55"), "observedAt"),
        (lambda d: d.__setitem__("entities", [{"kind": "toaster"}]), "entities.0.kind"),
        (lambda d: d.__setitem__("title", ""), "title"),
    ],
)
def test_generic_invalid_fields_are_named(mutate, field):
    d = copy.deepcopy(load("generic-alert.json"))
    mutate(d)
    with pytest.raises(ValidationError) as exc:
        generic.parse(d, NOW)
    assert field in [x["field"] for x in exc.value.details]


def test_validation_errors_do_not_echo_input():
    d = load("generic-alert.json")
    d["score"] = "<script>secret-value</script>"
    with pytest.raises(ValidationError) as exc:
        generic.parse(d, NOW)
    assert "secret-value" not in json.dumps(exc.value.details)


def test_unrecognised_shapes_are_rejected():
    for parse in (defender.parse, sentinel.parse, generic.parse):
        with pytest.raises(ValidationError):
            parse({"hello": "world"}, NOW)
        with pytest.raises(ValidationError):
            parse([1, 2], NOW)


def test_control_characters_are_dropped_and_text_capped():
    d = load("generic-alert.json")
    d["title"] = "bad\x00\x07title" + "x" * 3000
    a = generic.parse(d, NOW)
    assert "\x00" not in a.title and "\x07" not in a.title and len(a.title) <= 512
