"""Cold start: importing the app must not load SDK clients or the domain models (they load on first use)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "pydantic",
    "azure.mgmt",
    "msgraph",
    "azure.monitor",
    "azure.communication",
    "azure.data.tables",
    "azure.identity",
    "kiota_abstractions",
)


def test_importing_function_app_loads_no_sdk_client_or_models():
    code = (
        "import json, sys; import function_app; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_function_app_registers_every_public_route():
    code = (
        "import json, function_app; "
        "fns = function_app.app.get_functions(); "
        "print(json.dumps(sorted(f.get_function_name() for f in fns)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    names = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {
        "ingest_defender_alert",
        "ingest_sentinel_incident",
        "ingest_generic_alert",
        "poll_log_analytics",
        "incident_runbook",
        "get_incident",
        "verify_incident_chain",
        "acknowledge_incident",
        "change_incident_priority",
        "request_call_escalation",
        "approve_containment",
        "release_containment",
        "export_evidence",
        "get_review",
        "submit_review",
        "sla_report",
        "acs_call_events",
        "call_escalation",
        "containment_orchestrator",
        "sla_watchdog",
        "writeback_sync",
    } <= names
