"""SLA clocks, the evidence hash chain, partner registry and the response plan (pure)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.evidence import GENESIS_HASH, EventDraft, chain, verify_chain
from shared.ingest import merge_alert, open_incident
from shared.intake import defender, generic, sentinel
from shared.models import Alert, Entity, EntityKind, Phase, Priority
from shared.partners import PartnerRegistry
from shared.response_plan import ActionDecision, ActionKind, plan_response
from shared.scoring import ScoringRules, score_alert
from shared.settings import Settings
from shared.sla import add_business_days, next_business_day_end, response_due, start_clocks

ROOT = Path(__file__).resolve().parents[2]
UTC = UTC
RULES = ScoringRules.load(ROOT / "config/scoring-rules.json")
PARTNERS = PartnerRegistry.load(ROOT / "config/partners.json")


def sample(name):
    return json.loads((ROOT / "samples" / name).read_text())


# -- SLA ---------------------------------------------------------------------------
def test_clocks_per_priority():
    t = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    c = start_clocks(Priority.P1, t, t + timedelta(seconds=1), "UTC")
    assert c.triage_due == t + timedelta(minutes=15) and c.first_response_due == t + timedelta(minutes=30)
    assert c.response_sla_due == t + timedelta(minutes=30)
    assert response_due(Priority.P2, t, "UTC") == t + timedelta(hours=2)
    assert response_due(Priority.P3, t, "UTC") == t + timedelta(hours=24)


def test_p4_next_business_day_in_partner_time_zone():
    # Friday 23:30 in New York is Saturday 04:30 UTC: next business day is Monday, 17:00 New York (EST).
    friday_night = datetime(2026, 11, 21, 4, 30, tzinfo=UTC)
    assert next_business_day_end(friday_night, "America/New_York") == datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    # The same instant in Tokyo is Saturday: next business day Monday 17:00 JST.
    assert next_business_day_end(friday_night, "Asia/Tokyo") == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_business_days_across_dst_change():
    # Thursday 2026-10-29 10:00 in New York (EDT) + 5 business days → Thursday 2026-11-05 10:00 EST.
    start = datetime(2026, 10, 29, 14, 0, tzinfo=UTC)
    assert add_business_days(start, 5, "America/New_York") == datetime(2026, 11, 5, 15, 0, tzinfo=UTC)


# -- evidence chain ---------------------------------------------------------------------
def _events(n=4):
    t = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    drafts = [
        EventDraft(
            event_type=f"e{i}",
            phase=Phase.DETECT,
            summary=f"s{i}",
            occurred_at=t + timedelta(seconds=i),
            data={"i": i, "text": "ünïcode"},
        )
        for i in range(n)
    ]
    return chain("INC-1", drafts, 0, GENESIS_HASH)


def test_untouched_chain_verifies():
    evs = _events()
    assert verify_chain(evs).valid
    assert evs[0].prev_hash == GENESIS_HASH and evs[1].prev_hash == evs[0].hash
    assert evs[0].criterion == "CC7.3"


@pytest.mark.parametrize(
    "tamper, broken_at",
    [
        (lambda evs: setattr(evs[2], "summary", "edited"), 3),
        (lambda evs: evs[1].data.__setitem__("i", 99), 2),
        (lambda evs: evs.pop(1), 2),
        (lambda evs: evs.insert(1, evs.pop(2)), 2),
        (lambda evs: setattr(evs[3], "actor", "mallory"), 4),
    ],
)
def test_tampering_is_detected_at_its_position(tamper, broken_at):
    evs = _events()
    tamper(evs)
    verdict = verify_chain(evs)
    assert not verdict.valid and verdict.broken_at == broken_at


def test_phase_criteria():
    assert Phase.DETECT.criterion == Phase.TRIAGE.criterion == "CC7.3"
    assert Phase.CONTAIN.criterion == Phase.NOTIFY.criterion == "CC7.4"
    assert Phase.RECOVER.criterion == Phase.REVIEW.criterion == "CC7.5"


# -- partners ----------------------------------------------------------------------------
def test_partner_resolution_order_and_unknown():
    now = datetime.now(UTC)
    a = defender.parse(sample("defender-alert-arm.json"), now)
    assert PARTNERS.resolve(a)[0].id == "contoso"
    g = generic.parse(sample("generic-alert.json"), now)
    partner, how = PARTNERS.resolve(g)
    assert partner.id == "contoso" and how.startswith("tenant")
    stray = Alert(
        source="generic",
        source_id="x",
        dedupe_keys=["k"],
        title="t",
        observed_at=now,
        tenant_ids=["99999999-9999-9999-9999-999999999999"],
    )
    partner, how = PARTNERS.resolve(stray)
    assert partner is None and "SOC" in how


@pytest.mark.parametrize(
    "patch, words",
    [
        (lambda d: d["partners"][0].__setitem__("timezone", "Mars/Olympus"), "time zone"),
        (lambda d: d["partners"][0]["emergencyContacts"][0].__setitem__("phone", "555-0100"), "E.164"),
        (lambda d: d["partners"][0].__setitem__("responseMode", "yolo"), "responseMode"),
        (lambda d: d["partners"].append(dict(d["partners"][0])), "duplicate partner id"),
        (lambda d: d["partners"][0].__setitem__("socAlertEmails", ["not-an-email"]), "email"),
    ],
)
def test_partner_file_validation(tmp_path, patch, words):
    d = sample("partners.json")
    patch(d)
    f = tmp_path / "partners.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ConfigurationError) as exc:
        PartnerRegistry.load(f)
    assert "PARTNERS_FILE" in str(exc.value) and words in str(exc.value)


# -- incidents and the response plan ---------------------------------------------------------
def _incident(alert):
    partner, _ = PARTNERS.resolve(alert)
    d = score_alert(alert, RULES, partner)
    t = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    return open_incident("INC-T", alert, d, partner, "UTC", t, t)


def test_p1_plan_isolates_vm_in_partner_mode():
    inc = _incident(defender.parse(sample("defender-alert-arm.json"), datetime.now(UTC)))
    plan = plan_response(inc, PARTNERS, Settings(response_mode="dry-run"))
    assert plan.response_mode == "enforce"  # the partner overrides the deployment default
    assert [a.kind for a in plan.containment] == [ActionKind.ISOLATE_VM]
    assert plan.containment[0].decision == ActionDecision.EXECUTE
    assert plan.notification.phone_escalation and plan.notification.phone_numbers == ["+15555550100", "+15555550101"]
    assert "dana.reyes@contoso.example" in plan.notification.email_to


def test_protected_identity_is_never_disabled(tmp_path):
    d = sample("partners.json")
    d["partners"][0]["protectedIdentities"].append("jordan.lee@contoso.example")
    (tmp_path / "p.json").write_text(json.dumps(d))
    reg = PartnerRegistry.load(tmp_path / "p.json")
    alert = sentinel.parse(sample("sentinel-incident-trigger.json"), datetime.now(UTC))
    partner, _ = reg.resolve(alert)
    inc = open_incident(
        "INC-T", alert, score_alert(alert, RULES, partner), partner, "UTC", datetime.now(UTC), datetime.now(UTC)
    )
    plan = plan_response(inc, reg, Settings())
    user = next(a for a in plan.containment if a.kind == ActionKind.DISABLE_USER)
    assert user.decision == ActionDecision.SKIP and "protected" in user.reason


def test_below_p1_nothing_is_contained_and_firewalls_get_findings_only():
    inc = _incident(generic.parse(sample("generic-alert.json"), datetime.now(UTC)))
    assert inc.priority == Priority.P2
    plan = plan_response(inc, PARTNERS, Settings())
    assert plan.containment == [] and not plan.notification.phone_escalation
    p1 = inc.model_copy(update={"priority": Priority.P1})
    plan = plan_response(p1, PARTNERS, Settings())
    assert [(a.kind, a.decision) for a in plan.containment] == [(ActionKind.PARTNER_FINDING, ActionDecision.NONE)]


def test_unknown_partner_goes_to_soc_contacts():
    alert = Alert(
        source="generic",
        source_id="x",
        dedupe_keys=["k"],
        title="t",
        observed_at=datetime.now(UTC),
        explicit_score=9,
        entities=[Entity(kind=EntityKind.ACCOUNT, upn="someone@else.example")],
    )
    inc = _incident(alert)
    plan = plan_response(inc, PARTNERS, Settings(response_mode="approve"))
    assert plan.notification.routed_to_soc and plan.notification.email_to[0] == "soc-oncall@soc.example"
    assert plan.containment[0].decision == ActionDecision.HOLD


def test_merge_takes_highest_priority_and_starts_new_epoch_on_p1():
    now = datetime.now(UTC)
    inc = _incident(generic.parse(sample("generic-alert.json"), now))
    crit = Alert(
        source="generic",
        source_id="y",
        dedupe_keys=["k2"],
        title="worse",
        observed_at=now,
        explicit_score=10,
        entities=[Entity(kind=EntityKind.IP, address="192.0.2.77")],
    )
    merged, raised = merge_alert(inc, crit, score_alert(crit, RULES), "UTC", now)
    assert raised == Priority.P1 and merged.priority == Priority.P1 and merged.runbook_epoch == 2
    assert merged.alert_count == 2 and len(merged.entities) == len(inc.entities)  # same IP not duplicated
    p3 = _incident(
        Alert(source="generic", source_id="a", dedupe_keys=["k4"], title="p3", observed_at=now, explicit_score=5)
    )
    p2 = Alert(source="generic", source_id="b", dedupe_keys=["k5"], title="p2", observed_at=now, explicit_score=7)
    merged_p2, raised_p2 = merge_alert(p3, p2, score_alert(p2, RULES), "UTC", now)
    assert raised_p2 == Priority.P2 and merged_p2.runbook_epoch == 2  # the runbook notifies the raise
    low = Alert(source="generic", source_id="z", dedupe_keys=["k3"], title="meh", observed_at=now, explicit_score=2)
    merged2, raised2 = merge_alert(merged, low, score_alert(low, RULES), "UTC", now)
    assert raised2 is None and merged2.priority == Priority.P1
