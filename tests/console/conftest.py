"""Console tests: the app harness in entra mode, a principal header per role, a held P1 isolation."""

from __future__ import annotations

import pytest

from shared.access import principal_header
from tests.containment.conftest import host, ingest, p1_alert, seed_vm

LEAD, ANALYST, AUDITOR = "lead@soc.example", "ana.lyst@soc.example", "audrey@soc.example"
ROLE_OF = {"Approver": LEAD, "Responder": ANALYST, "Auditor": AUDITOR}


def as_role(role: str) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": principal_header(ROLE_OF[role], [role])}


@pytest.fixture
def console(app):
    """The app with sign-in on (entra), enforce mode, containment retries without backoff."""
    app.configure(OPERATOR_AUTH="entra", RESPONSE_MODE="enforce", CONTAINMENT_RETRY_BACKOFF_SECONDS="0")
    return app


def held_isolation(app, title: str = "Ransomware behaviour detected", name: str = "dc-01") -> tuple[str, list[str]]:
    """A P1 whose VM isolation is held for approval (the VM is tagged Soc-Isolation=approval)."""
    vm, nics = seed_vm(app.fake, name, tags={"Soc-Isolation": "approval"})
    body = p1_alert(host(vm))
    body["title"] = title
    return ingest(app, body), nics
