"""Managed Sentinel labels stay ours (and are removed when our state moves on) whatever happens to the answer of
the write that added them: lost on the way back, failed after it landed, or raced by another projection. Through
the HTTPS fake with the real ARM pipeline client."""

from __future__ import annotations

import json
import re

from tests.writeback.conftest import (
    ROOT,
    host_entity,
    incident_rid,
    ip_entity,
    labels_of,
    seed_sentinel,
    seed_vm,
    sentinel_payload,
)

ANA = "ana.analyst@contoso.example"
VIP = {"labelName": "vip-user", "labelType": "User"}


def incident_path(rid: str) -> str:
    return re.escape(rid.split("/providers/Microsoft.SecurityInsights")[1]) + "$"


def only_state(wb) -> dict:
    from shared.writeback import state as st

    [row] = list(wb.store.iter_incident_index())
    return st.load(wb.store, row.incident_id).wire()


def sentinel_entry(wb, rid: str) -> dict:
    from shared.writeback.targets import target_key

    return only_state(wb)["targets"].get(target_key(rid)) or {}


def lose_answers(wb, rid: str, *, then: str) -> dict:
    """The first PUT of the incident reaches Sentinel (applied) but its answer is lost: the client sees a 503.
    ``then="normal"``: later PUTs are answered as Sentinel would (the client's retry, with the old If-Match, gets
    412); ``then="503"``: later PUTs fail without landing. Returns what was recorded (write-ahead claims, statuses)."""
    seen: dict = {"claimsAtPut": [], "statuses": [], "mode": then}

    def handler(req, m):
        seen["claimsAtPut"].append(dict(sentinel_entry(wb, rid).get("labelClaims") or {}))
        first = len(seen["claimsAtPut"]) == 1
        if first or seen["mode"] == "normal":
            resp = wb.fake._arm_answer(req)  # the fake's own ARM PUT (If-Match → 412)
            if not first:
                seen["statuses"].append(resp.status)
                return resp
            seen["statuses"].append(f"applied {resp.status}, answer lost")
        return 503, {"error": {"code": "ServiceUnavailable", "message": "the gateway lost the backend's answer"}}

    wb.fake.route("PUT", incident_path(rid), handler)
    return seen


def test_a_lost_answer_keeps_our_labels_ours_and_approval_and_a_priority_change_remove_them(wb, tmp_path):
    registry = json.loads((ROOT / "config/partners.json").read_text())
    registry["partners"][0]["responseMode"] = "approve"
    (tmp_path / "partners.json").write_text(json.dumps(registry))
    wb.configure(PARTNERS_FILE=str(tmp_path / "partners.json"), CONTAINMENT_RETRY_BACKOFF_SECONDS="0")
    vm, _ = seed_vm(wb.fake, "vm-db-07")
    payload = sentinel_payload(alert_type="Ransomware_FileEncryption", entities=[host_entity(vm)])
    seed_sentinel(wb.fake, payload, labels=[VIP])
    rid = incident_rid(payload)
    seen = lose_answers(wb, rid, then="normal")

    iid = wb.post_sentinel(payload)["incidentId"]

    # The lost answer, then azure-core's retry of the same PUT (old If-Match) → 412 → re-read: all there already.
    assert seen["statuses"] == ["applied 200, answer lost", 412]
    assert labels_of(wb.fake, rid) == ["vip-user", "soc-responder", "P1", "held-for-approval"]
    ours = {"soc-responder", "P1", "held-for-approval"}
    assert set(seen["claimsAtPut"][0]) == ours  # written ahead: in our state before the PUT left
    assert set(sentinel_entry(wb, rid)["labelClaims"]) == ours
    assert wb.runbook(iid)["writeback"]["status"] == "written"
    assert wb.events(iid, "writeback.sentinel")[0]["data"]["concurrentEdits"] == 1

    r = wb.post(f"/api/incidents/{iid}/approve", {"actor": ANA, "decision": "approve", "reason": "go"})
    assert r.status in (200, 202), r.text
    wb.sync()
    assert labels_of(wb.fake, rid) == ["vip-user", "soc-responder", "P1", "contained"]

    r = wb.post(f"/api/incidents/{iid}/priority", {"actor": ANA, "priority": "P2", "reason": "contained, lower"})
    assert r.status == 200, r.text
    wb.sync()
    assert labels_of(wb.fake, rid) == ["vip-user", "soc-responder", "contained", "P2"]
    assert wb.events(iid, "writeback.sentinel")[-1]["data"]["changes"]["labelsRemoved"] == ["P1"]
    assert set(sentinel_entry(wb, rid)["labelClaims"]) == {"soc-responder", "contained", "P2"}


def test_a_write_that_landed_but_failed_keeps_its_labels_ours_in_the_failure_state(wb):
    payload = sentinel_payload(entities=[ip_entity()])  # High + Exfiltration: P1, nothing containable
    seed_sentinel(wb.fake, payload, labels=[VIP])
    rid = incident_rid(payload)
    seen = lose_answers(wb, rid, then="503")

    iid = wb.post_sentinel(payload)["incidentId"]

    # Landed, then every retry failed: the write-back failed, nothing recorded as applied …
    assert seen["statuses"] == ["applied 200, answer lost"] and len(seen["claimsAtPut"]) > 1  # + the retries
    assert labels_of(wb.fake, rid) == ["vip-user", "soc-responder", "P1"]
    [failed] = wb.events(iid, "writeback.failed")
    assert failed["data"]["error"]["status"] == 503
    entry = sentinel_entry(wb, rid)
    assert entry["failure"]["attempts"] == 1 and not entry.get("applied")
    # … but the labels it added are ours in the state the failure left.
    assert set(entry["labelClaims"]) == {"soc-responder", "P1"}

    seen["mode"] = "normal"  # Sentinel answers again
    r = wb.post(f"/api/incidents/{iid}/priority", {"actor": ANA, "priority": "P3", "reason": "false alarm"})
    assert r.status == 200, r.text
    wb.sync()
    assert labels_of(wb.fake, rid) == ["vip-user", "soc-responder", "P3"]
    event = wb.events(iid, "writeback.sentinel")[-1]
    assert event["data"]["changes"]["labelsRemoved"] == ["P1"] and event["data"]["afterFailures"] == 1


def test_a_projection_that_loaded_its_state_before_a_concurrent_one_does_not_drop_its_labels(wb):
    """The runbook's activity loads the write-back state; the timer projects the same incident meanwhile (adds the
    labels, saves them as ours); the activity's read then finds them there. Its save must not forget them."""
    from shared.adapters.defender_alerts import ArmDefenderAlerts
    from shared.adapters.sentinel import ArmSentinelIncidents
    from shared.writeback.service import WritebackService

    wb.configure(WRITEBACK_TARGETS="none")  # the runbook's own write-back stays out of the way
    payload = sentinel_payload(severity="Medium", tactics=[])  # P3
    seed_sentinel(wb.fake, payload, labels=[VIP])
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    wb.configure(WRITEBACK_TARGETS="sentinel")
    ctx = wb.context
    timer = WritebackService(
        ctx.store, ctx.partners, ctx.settings, ArmSentinelIncidents(ctx.settings), ArmDefenderAlerts(ctx.settings)
    )

    class TimerRunsFirst(ArmSentinelIncidents):
        """Our port on the real ARM client; the timer's whole projection runs just before the activity's read."""

        raced = False

        def get_incident(self, incident_id):
            if not self.raced:
                self.raced = True
                assert timer.write_back(iid, "timer")["status"] == "written"
            return super().get_incident(incident_id)

    activity = WritebackService(
        ctx.store, ctx.partners, ctx.settings, TimerRunsFirst(ctx.settings), ArmDefenderAlerts(ctx.settings)
    )
    assert activity.write_back(iid, "runbook")["status"] in ("written", "unchanged")
    assert labels_of(wb.fake, rid) == ["vip-user", "soc-responder", "P3"]
    assert set(sentinel_entry(wb, rid)["labelClaims"]) == {"soc-responder", "P3"}

    r = wb.post(f"/api/incidents/{iid}/priority", {"actor": ANA, "priority": "P2", "reason": "VIP account"})
    assert r.status == 200, r.text
    wb.sync()
    assert labels_of(wb.fake, rid) == ["vip-user", "soc-responder", "P2"]
