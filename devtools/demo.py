"""`make demo`: the sample alerts through the real function handlers, in dry-run, with a readable report.

Azurite holds the evidence tables; the loopback HTTPS fake of Azure answers
Log Analytics (the timer poll), Microsoft Graph and ACS, so nothing leaves this
machine. The deployment runs in ``RESPONSE_MODE=dry-run`` and the demo's copy
of the partner registry drops the sample partner's ``enforce`` override, so
every containment is planned and evidenced but nothing is changed.
"""

from __future__ import annotations

import json
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools import demo_storm
from devtools.demo_storm import PARTNER as STORM_PARTNER

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
OUT = ROOT / ".demo"

DELIVERIES = [
    ("Defender for Cloud alert, ARM shape (crypto-miner)", "/api/alerts/defender", "defender-alert-arm.json"),
    (
        "Defender for Cloud alert, workflow-automation shape (brute force)",
        "/api/alerts/defender",
        "defender-alert-connector.json",
    ),
    (
        "Sentinel incident, playbook trigger (sign-in + mass download)",
        "/api/incidents/sentinel",
        "sentinel-incident-trigger.json",
    ),
    ("Generic alert with explicit score (FortiGate)", "/api/alerts", "generic-alert.json"),
    ("The crypto-miner alert delivered again (a retry)", "/api/alerts/defender", "defender-alert-arm.json"),
    (
        "The Sentinel incident as a bare incident resource",
        "/api/incidents/sentinel",
        "sentinel-incident-trigger.json#object",
    ),
    # issue 13: the rest of the range — P3, P4 (held for the digest), a test alert, an incident already closed
    (
        "Defender for Cloud: anonymous access to storage (P3)",
        "/api/alerts/defender",
        "defender-alert-storage-exposed.json",
    ),
    (
        "Defender for Cloud: application control audit (P4, digest)",
        "/api/alerts/defender",
        "defender-alert-informational.json",
    ),
    (
        "Defender for Cloud sample alert (test: recorded, nothing started)",
        "/api/alerts/defender",
        "defender-sample-alert.json",
    ),
    (
        "Sentinel incident already Closed as FalsePositive (recorded, nothing started)",
        "/api/incidents/sentinel",
        "sentinel-incident-closed.json",
    ),
]


def _load(name: str):
    file, _, part = name.partition("#")
    doc = json.loads((SAMPLES / file).read_text())
    return doc[part] if part else doc


def _demo_partners() -> Path:
    registry = json.loads((ROOT / "config/partners.json").read_text())
    for partner in registry["partners"]:
        partner.pop("responseMode", None)  # let the deployment-wide dry-run apply
    registry["partners"].append(STORM_PARTNER)  # the alert storm's partner (devtools/demo_storm.py)
    path = OUT / "partners.json"
    path.write_text(json.dumps(registry, indent=2))
    return path


def _seed_azure(fake) -> None:
    """What the sample alerts point at, so the dry-run plans read real state (reads only)."""
    sub = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups"
    nics = [f"{sub}/rg-prod/providers/Microsoft.Network/networkInterfaces/vm-web-01-nic{i}" for i in (1, 2)]
    fake.add_nsg(f"{sub}/rg-prod/providers/Microsoft.Network/networkSecurityGroups/nsg-web", "eastus")
    fake.add_nic(nics[0], "eastus", nsg_id=f"{sub}/rg-prod/providers/Microsoft.Network/networkSecurityGroups/nsg-web")
    fake.add_nic(nics[1], "eastus")
    fake.add_vm(f"{sub}/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01", "eastus", nics)
    fake.add_user("8e7d6c5b-4a39-4281-b0f1-e2d3c4b5a697", "jordan.lee@contoso.example")
    fake.add_mailbox("soc-responder@soc.example")


def _log_analytics_answer(workspace, body):
    sample = json.loads((SAMPLES / "log-analytics-query-response.json").read_text())
    if body["query"].startswith("SecurityIncident"):
        return {
            "tables": [{"name": "PrimaryResult", "columns": [{"name": "IncidentName", "type": "string"}], "rows": []}]
        }
    return sample


def _fmt_time(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")


def _wrap(text: str, indent: str = "      ") -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)


def render(incidents: list[dict], deliveries: list[tuple[str, int, dict]], poll: dict, verify: dict) -> str:
    """The readable report."""
    lines = ["", "soc-responder demo — sample alerts through the real handlers (dry-run)", "=" * 78, "", "Deliveries:"]
    for title, status, body in deliveries:
        lines.append(f"  {status}  {title}")
        lines.append(f"       → {body.get('incidentId')}  {body.get('priority')}  outcome={body.get('outcome')}")
    lines += ["", f"Timer poll_log_analytics: {poll['summary']}", ""]
    for inc in incidents:
        lines.append("-" * 78)
        lines.append(f"{inc['id']}  {inc['priority']} ({inc['score']}/10)  {inc['title']}")
        lines.append(
            f"  partner: {inc.get('partnerName') or 'none matched → SOC contacts'}   status: {inc['status']}"
            f"   alerts: {inc['alertCount']}"
        )
        for a in inc["alerts"]:
            lines.append(
                f"    · {a['source']}: {a['title']} ({a.get('severity') or 'no severity'}, score {a['score']})"
            )
        lines.append("  why this priority (rules fired, in order):")
        for hit in inc["triage"]["rulesFired"]:
            lines.append(f"    - {hit['ruleId']}: {hit['description']} → {hit['effect']} (score {hit['scoreAfter']})")
        sla = inc["sla"]
        lines.append(f"  SLA clocks: received {_fmt_time(sla['receivedAt'])}, triaged {_fmt_time(sla['triagedAt'])}")
        lines.append(
            f"    triage due {_fmt_time(sla['triageDue'])}; first response due {_fmt_time(sla['firstResponseDue'])};"
            f" {inc['priority']} response SLA due {_fmt_time(sla['responseSlaDue'])}"
        )
        if sla.get("firstResponseAt"):
            lines.append(f"    first response at {_fmt_time(sla['firstResponseAt'])}")
        lines.append("  runbook:")
        for ev in inc["timeline"]:
            if ev["phase"] in ("Contain", "Notify", "Investigate", "Recover"):
                lines.append(_wrap(f"[{ev['phase']}] {ev['summary']}"))
        if inc.get("extra", {}).get("test") or inc.get("extra", {}).get("closedAtSource"):
            reason = inc["extra"].get("testReason") or inc["extra"].get("closedReason")
            lines.append(_wrap(f"recorded only, nothing started: {reason}"))
        lines.append(
            f"  evidence: {len(inc['timeline'])} timeline events, hash chain "
            f"{'verified' if verify[inc['id']]['valid'] else 'BROKEN'}"
        )
    lines += ["-" * 78, ""]
    return "\n".join(lines)


def _escalate_and_acknowledge(rt, ctx, fake) -> dict:
    """Move simulated time through the P1 call schedule; an analyst acknowledges one incident."""
    p1 = sorted(i.id for i in ctx.store.iter_incidents() if i.priority.value == "P1")
    steps = []
    rt.durable.advance(timedelta(minutes=16))
    steps.append(
        f"+16 min: second call to each emergency number, announcing every unacknowledged P1 "
        f"({len(fake.calls())} calls so far)"
    )
    acked = None
    if p1:
        acked = p1[0]
        resp = rt.http(
            "POST", f"/api/incidents/{acked}/ack", body={"actor": "analyst@soc.example", "note": "Taking this one"}
        )
        steps.append(f"analyst@soc.example acknowledges {acked}: HTTP {resp.status_code}")
    before = {i: _calls_for(ctx, i) for i in p1}
    rt.durable.advance(timedelta(minutes=45))
    after = {i: _calls_for(ctx, i) for i in p1}
    for i in p1:
        steps.append(
            f"+61 min: {i}: {after[i]} call(s) in all, {after[i] - before[i]} after +16 min"
            f"{' (acknowledged: stopped)' if i == acked else ' (not acknowledged: still calling)'}"
        )
    return {"steps": steps, "acknowledged": acked}


def _calls_for(ctx, incident_id: str) -> int:
    """Calls that announced the incident (issue 14: one call to a number announces all its incidents; each
    announced incident keeps a copy of the call's row)."""
    return sum(1 for r in ctx.store.list_records("Notifications", incident_id) if r.get("channel") == "call")


def _render_notifications(fake, escalation: dict) -> str:
    lines = ["Notifications (delivered to the local fake of Graph and ACS, never to real people):"]
    for mail in fake.sent_mail():
        lines.append(f"  email  {mail.subject}")
        lines.append(f"         to {', '.join(mail.to)}")
    lines.append(f"  calls  {len(fake.calls())} placed; each says what happened and asks the callee to press 1")
    lines.append("")
    lines.append("Phone escalation in simulated time (durable timers, acknowledgement stops it at once):")
    lines += [f"  {s}" for s in escalation["steps"]]
    return "\n".join(lines) + "\n\n"


def _coverage_summary() -> str:
    """The catalogue coverage totals (issue 13): what every published alert maps to with the shipped rules."""
    import contextlib
    import io

    from shared.triage.coverage import main as coverage

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coverage(["--rules", str(ROOT / "config/scoring-rules.json"), "--summary"])
    return (
        "\nCoverage of Microsoft's alert catalogues (make coverage-report for every entry):\n" + out.getvalue() + "\n"
    )


def main() -> int:
    OUT.mkdir(exist_ok=True)
    from devtools.local_azure import local_azure

    print("Starting Azurite (in memory) and the local Azure fake …", flush=True)
    settings = {
        "RESPONSE_MODE": "dry-run",
        "PARTNERS_FILE": str(_demo_partners()),
        "SCORING_RULES_FILE": str(ROOT / "config/scoring-rules.json"),
        "LOG_ANALYTICS_WORKSPACE_ID": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "MAIL_SENDER": "soc-responder@soc.example",
        "ACS_CALLER_ID": "+15555550000",
        "CALLBACK_BASE_URL": "https://soc-responder.example",
        # issue 12: no App Service Authentication locally, so operator calls name their actor in the body
        "OPERATOR_AUTH": "function-key",
    }
    print(
        "OPERATOR_AUTH=function-key (local run without Entra sign-in): operator actors are taken from the "
        "request body and their events are marked actorVerified: false",
        flush=True,
    )
    with local_azure(settings) as (_azurite, fake):
        _seed_azure(fake)
        fake.log_analytics_handler = _log_analytics_answer

        from devtools.functions_runtime import LocalFunctionsRuntime
        from function_app import build_app
        from shared import runtime

        deliveries = []
        with LocalFunctionsRuntime(build_app(), now=datetime.now(UTC), host_json=str(ROOT / "host.json")) as rt:
            for title, route, name in DELIVERIES:
                resp = rt.http("POST", route, body=_load(name))
                deliveries.append((title, resp.status_code, json.loads(resp.get_body())))
            rt.timer("poll_log_analytics")
            ctx = runtime.context()
            escalation = _escalate_and_acknowledge(rt, ctx, fake)
            state = ctx.store.get_state("log-analytics-watermark")
            if state:
                run = state[0]["lastRun"]
                poll = {
                    "summary": ", ".join(f"{v} {k}" for k, v in run.items())
                    + f"; watermark now {_fmt_time(state[0]['watermark'])}"
                }
            else:
                poll = {"summary": "no watermark stored"}
            ids = sorted({inc.id for inc in ctx.store.iter_incidents()})
            incidents, verify = [], {}
            for iid in ids:
                incidents.append(json.loads(rt.http("GET", f"/api/incidents/{iid}").get_body()))
                verify[iid] = json.loads(rt.http("GET", f"/api/incidents/{iid}/verify").get_body())
            notifications = _render_notifications(fake, escalation)
            storm = demo_storm.run(rt, ctx, fake)  # last: the scenarios above are reported as they were
            writes = fake.writes(api="arm") + fake.writes(api="graph")
            containment_writes = [w for w in writes if "sendMail" not in w.path]
        report = render(incidents, deliveries, poll, verify) + notifications
        report += _coverage_summary()
        report += demo_storm.render(storm)
        report += (
            f"Dry-run check: {len(containment_writes)} containment write request(s) reached ARM/Graph (expected 0).\n"
        )
        print(report)
        (OUT / "report.txt").write_text(report)
        (OUT / "report.json").write_text(
            json.dumps(
                {"deliveries": deliveries, "incidents": incidents, "verify": verify, "storm": storm},
                indent=2,
                default=str,
            )
        )
        print(f"Full report: {OUT / 'report.txt'} and {OUT / 'report.json'}")
        return 0 if not containment_writes and all(v["valid"] for v in verify.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
