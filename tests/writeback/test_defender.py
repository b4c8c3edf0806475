"""Defender for Cloud alert state through the HTTPS fake: in progress while handled, resolved when closed,
and an alert a person dismissed left alone."""

from __future__ import annotations

from tests.fixtures.app import sample
from tests.writeback.conftest import CONTOSO_SUB, defender_alert_id, seed_defender_alert, seed_vm


def _arm_alert(wb, name: str = "2516892455221183920_5c3d8e2a-9f4b-4c1e-8d7a-1b2c3d4e5f60") -> tuple[dict, str, str]:
    """The sample ARM-shape alert (crypto-miner: P1) about a seeded VM, its alert resource seeded Active."""
    _vm, nic = seed_vm(wb.fake, "vm-web-01")
    alert = sample("defender-alert-arm.json")
    alert_id = defender_alert_id(name)
    alert["id"], alert["name"] = alert_id, name
    alert["properties"]["systemAlertId"] = name
    seed_defender_alert(wb.fake, alert_id)
    return alert, alert_id, nic


def _status(wb, alert_id: str) -> str:
    return wb.fake.get_resource(alert_id)["properties"]["status"]


def _close(wb, incident_id: str, status: str = "resolved") -> None:
    """Resolve the incident as a closing step would (no route closes incidents yet): status and evidence."""
    from shared.evidence import EventDraft, now_ms
    from shared.models import ActorType, IncidentStatus, Phase
    from shared.notify.incidents import update_incident

    update_incident(
        wb.store, incident_id, lambda i: i.model_copy(update={"status": IncidentStatus(status), "updated_at": now_ms()})
    )
    wb.store.append_events(
        incident_id,
        [
            EventDraft(
                event_type="incident.status-changed",
                phase=Phase.RECOVER,
                occurred_at=now_ms(),
                actor="ana@soc.example",
                actor_type=ActorType.ANALYST,
                summary=f"Incident {status}",
                data={"to": status},
            )
        ],
    )


def test_contained_alert_goes_in_progress_then_resolved_when_the_incident_closes(wb):
    alert, alert_id, _nic = _arm_alert(wb)
    r = wb.post("/api/alerts/defender", alert)
    assert r.status == 202 and r.json()["priority"] == "P1", r.text
    iid = r.json()["incidentId"]

    assert wb.runbook(iid)["containment"]["status"] == "contained"
    assert _status(wb, alert_id) == "InProgress"
    [post] = wb.fake.requests("POST", "/alerts/")
    assert post.path == f"{alert_id}/inProgress" and post.query["api-version"] == "2022-01-01"
    [event] = wb.events(iid, "writeback.defender")
    assert event["data"]["statusBefore"] == "Active" and event["data"]["statusAfter"] == "InProgress"

    wb.sync()
    assert len(wb.fake.requests("POST", "/alerts/")) == 1  # nothing changed: no second POST
    _close(wb, iid)
    wb.sync()
    assert _status(wb, alert_id) == "Resolved"
    assert [p.path.rsplit("/", 1)[-1] for p in wb.fake.requests("POST", "/alerts/")] == ["inProgress", "resolve"]


def test_an_alert_a_person_dismissed_is_left_alone(wb):
    alert, alert_id, _ = _arm_alert(wb)
    seed_defender_alert(wb.fake, alert_id, status="Dismissed")
    iid = wb.post("/api/alerts/defender", alert).json()["incidentId"]
    assert _status(wb, alert_id) == "Dismissed" and wb.fake.requests("POST", "/alerts/") == []
    [event] = wb.events(iid, "writeback.defender")
    assert "left as a person set it" in event["summary"]
    _close(wb, iid)
    wb.sync()
    assert _status(wb, alert_id) == "Dismissed" and wb.fake.requests("POST", "/alerts/") == []


def test_an_open_alert_nobody_acted_on_stays_active(wb):
    alert = sample("defender-alert-arm.json")
    name = "2516892455221183920_aaaa"
    alert["id"], alert["properties"]["systemAlertId"] = defender_alert_id(name), name
    alert["properties"].update(severity="Medium", alertType="VM_Misconfiguration", intent="Unknown")
    seed_defender_alert(wb.fake, alert["id"])
    iid = wb.post("/api/alerts/defender", alert).json()["incidentId"]
    assert wb.runbook(iid)["writeback"]["status"] == "unchanged"
    assert wb.fake.requests(path_contains="Microsoft.Security/") == []
    ack = wb.post(f"/api/incidents/{iid}/ack", {"actor": "ana@soc.example"})
    assert ack.status == 200, ack.text
    wb.sync()  # a person took it: in progress
    assert _status(wb, alert["id"]) == "InProgress"


def test_connector_alerts_are_updated_when_their_location_is_known_and_skipped_with_the_reason_otherwise(wb):
    alert = sample("defender-alert-connector.json")  # no location anywhere: no alert resource id
    iid = wb.post("/api/alerts/defender", alert).json()["incidentId"]
    wb.post(f"/api/incidents/{iid}/ack", {"actor": "ana@soc.example"})
    wb.sync()
    [skipped] = wb.events(iid, "writeback.skipped")
    assert "no alert resource id" in skipped["summary"] and "location" in skipped["data"]["alerts"][0]["reason"]
    assert wb.fake.requests(path_contains="Microsoft.Security/") == []

    located = sample("defender-alert-connector.json")  # the same host again, its deep link naming the location
    located["SystemAlertId"] = "2516892101887766554_bbbb"
    located["AlertUri"] += "/subscriptionId/x/referencedFrom/alertDeepLink/location/eastus"
    alert_id = defender_alert_id("2516892101887766554_bbbb", rg=None)
    seed_defender_alert(wb.fake, alert_id)
    joined = wb.post("/api/alerts/defender", located).json()
    assert (joined["incidentId"], joined["outcome"]) == (iid, "grouped")
    wb.sync()
    assert _status(wb, alert_id) == "InProgress"
    [post] = wb.fake.requests("POST", "/alerts/")
    assert post.path == (
        f"/subscriptions/{CONTOSO_SUB}/providers/Microsoft.Security/locations/eastus/alerts/"
        "2516892101887766554_bbbb/inProgress"
    )
    assert len(wb.events(iid, "writeback.skipped")) == 1  # the unaddressable one is said once


def test_a_missing_alert_is_a_final_failure_not_a_retry_loop(wb):
    alert, alert_id, _ = _arm_alert(wb)
    wb.fake.delete_resource(alert_id)
    iid = wb.post("/api/alerts/defender", alert).json()["incidentId"]
    [failed] = wb.events(iid, "writeback.failed")
    assert failed["data"]["error"]["status"] == 404 and failed["data"]["final"] is True
    wb.fake.clear_log()
    wb.sync()
    wb.sync()
    assert wb.fake.requests(path_contains="Microsoft.Security/") == []
