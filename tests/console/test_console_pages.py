"""The console's pages in-process (no browser): status, CSP, escaping, roles, CSRF, the form → use case walk."""

from __future__ import annotations

import re

from tests.console.conftest import LEAD, as_role, held_isolation
from tests.containment.conftest import actions, quarantine_id

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"


def _csrf(resp) -> tuple[str, str]:
    token = re.search(r'name="csrf" value="([^"]+)"', resp.text).group(1)
    cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
    return token, cookie


def _post(app, path: str, role: str, form: dict, *, cookie: str, origin: str | None = "http://localhost:7071"):
    from urllib.parse import urlencode

    headers = {**as_role(role), "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    if origin:
        headers["Origin"] = origin
        headers["Sec-Fetch-Site"] = "same-origin"
    return app.request("POST", path, urlencode(form), headers=headers)


def test_queue_and_incident_pages_are_strict_html_for_every_role(console):
    app = console
    iid, _ = held_isolation(app)
    for role in ("Auditor", "Responder", "Approver"):
        queue = app.request("GET", "/api/console", headers=as_role(role))
        assert queue.status == 200, queue.text
        csp = queue.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
        assert queue.headers["X-Frame-Options"] == "DENY"
        assert "<script" not in queue.text and "style=" not in queue.text
        assert iid in queue.text and "held for approval" in queue.text
        page = app.request("GET", f"/api/console/incidents/{iid}", headers=as_role(role))
        assert page.status == 200 and "Chain verified" in page.text
        assert ("/approve" in page.text) == (role == "Approver")
        assert ("/release" in page.text) == (role == "Approver")
        assert ("/ack" in page.text) == (role != "Auditor")
    css = app.request("GET", "/api/console/static/console.css", headers=as_role("Auditor"))
    assert css.status == 200 and {k.lower(): v for k, v in css.headers.items()}["content-type"].startswith("text/css")


def test_no_sign_in_is_401_and_a_responder_cannot_approve(console):
    app = console
    iid, _ = held_isolation(app)
    assert app.request("GET", "/api/console").status == 401
    assert app.request("GET", f"/api/console/incidents/{iid}/approve", headers=as_role("Responder")).status == 403
    r = app.request("POST", f"/api/console/incidents/{iid}/approve", "decision=approve", headers=as_role("Responder"))
    assert r.status == 403
    assert actions(app, iid)["isolate-vm"]["status"] == "held"


def test_hostile_title_and_entity_names_stay_text(console):
    app = console
    iid, _ = held_isolation(app, title=HOSTILE, name="vm-x")
    for path in ("/api/console", f"/api/console/incidents/{iid}", f"/api/console/incidents/{iid}/approve"):
        page = app.request("GET", path, headers=as_role("Approver"))
        assert page.status == 200
        assert "<script>" not in page.text and "<img" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    found = app.request("GET", "/api/console", headers=as_role("Approver"), params={"q": "<script>"})
    assert iid in found.text


def test_approve_through_the_console_isolates_the_vm_and_answers_with_the_new_state(console):
    app = console
    iid, nics = held_isolation(app)
    form = app.request("GET", f"/api/console/incidents/{iid}/approve", headers=as_role("Approver"))
    assert form.status == 200 and "What will happen" in form.text and "isolate-vm" in form.text
    assert actions(app, iid)["isolate-vm"]["status"] == "held"  # a GET never acts
    token, cookie = _csrf(form)
    done = _post(
        app,
        f"/api/console/incidents/{iid}/approve",
        "Approver",
        {"csrf": token, "decision": "approve", "reason": "ok"},
        cookie=cookie,
    )
    assert done.status == 303, done.text
    assert done.headers["Location"] == f"/api/console/incidents/{iid}?done=approve"
    nic = app.fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"]
    assert nic.lower() == quarantine_id("eastus").lower()
    row = actions(app, iid)["isolate-vm"]
    assert row["status"] == "contained" and row["approval"]["actor"] == LEAD
    page = app.request("GET", done.headers["Location"], headers=as_role("Approver"))
    assert "Done: decision recorded" in page.text and "containment.approved" in page.text

    # release: the form names the exact NIC and the NSG it puts back, then restores it
    form = app.request("GET", f"/api/console/incidents/{iid}/release", headers=as_role("Approver"))
    assert nics[0] in form.text and "put back NSG" in form.text
    token, cookie = _csrf(form)
    done = _post(
        app, f"/api/console/incidents/{iid}/release", "Approver", {"csrf": token, "reason": "clean"}, cookie=cookie
    )
    assert done.status == 303, done.text
    assert actions(app, iid)["isolate-vm"]["status"] == "released"
    assert app.fake.get_resource(nics[0])["properties"].get("networkSecurityGroup") is None


def test_csrf_refusals_change_nothing(console):
    app = console
    iid, _ = held_isolation(app)
    form = app.request("GET", f"/api/console/incidents/{iid}/approve", headers=as_role("Approver"))
    token, cookie = _csrf(form)
    path = f"/api/console/incidents/{iid}/approve"
    # no token, a wrong token, a cross-site origin, another user's token
    assert _post(app, path, "Approver", {"decision": "approve"}, cookie=cookie).status == 403
    assert _post(app, path, "Approver", {"csrf": token + "x", "decision": "approve"}, cookie=cookie).status == 403
    assert (
        _post(
            app, path, "Approver", {"csrf": token, "decision": "approve"}, cookie=cookie, origin="https://evil.example"
        ).status
        == 403
    )
    from shared.access import principal_header

    other = {
        "X-MS-CLIENT-PRINCIPAL": principal_header("mallory@soc.example", ["Approver"]),
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": cookie,
        "Origin": "http://localhost:7071",
        "Sec-Fetch-Site": "same-origin",
    }
    assert app.request("POST", path, f"csrf={token}&decision=approve", headers=other).status == 403
    assert actions(app, iid)["isolate-vm"]["status"] == "held"
    assert "containment.approved" not in app.timeline(iid)


def test_acknowledge_and_bad_input_through_the_console(console):
    app = console
    iid, _ = held_isolation(app)
    form = app.request("GET", f"/api/console/incidents/{iid}/priority", headers=as_role("Responder"))
    token, cookie = _csrf(form)
    # no reason: the JSON route's own 400, shown on the form, nothing changed
    bad = _post(
        app, f"/api/console/incidents/{iid}/priority", "Responder", {"csrf": token, "priority": "P3"}, cookie=cookie
    )
    assert bad.status == 400 and "Not done" in bad.text and "reason" in bad.text
    assert app.store.get_incident(iid)[0].priority.value == "P1"
    form = app.request("GET", f"/api/console/incidents/{iid}/ack", headers=as_role("Responder"))
    token, cookie = _csrf(form)
    done = _post(app, f"/api/console/incidents/{iid}/ack", "Responder", {"csrf": token, "note": "on it"}, cookie=cookie)
    assert done.status == 303
    inc = app.store.get_incident(iid)[0]
    assert inc.acknowledged_by == "ana.lyst@soc.example"
    ack = [e for e in app.store.list_events(iid) if e.actor == "ana.lyst@soc.example"]
    assert ack and ack[0].data.get("actorVerified") is True


def test_queue_filters_pages_and_refuses_bad_filters(console):
    app = console
    assert app.request("GET", "/api/console", headers=as_role("Auditor"), params={"priority": "P9"}).status == 400
    assert app.request("GET", "/api/console", headers=as_role("Auditor"), params={"page": "0"}).status == 400
    iid, _ = held_isolation(app)
    p2 = app.request("GET", "/api/console", headers=as_role("Auditor"), params={"priority": "P2"})
    assert p2.status == 200 and iid not in p2.text
    audit = app.request("GET", "/api/console/audit", headers=as_role("Auditor"))
    assert audit.status == 200 and 'action="/api/evidence"' in audit.text


def test_auditor_exports_a_range_opens_the_review_and_sees_the_latest_anchor(console):
    app = console
    iid, _ = held_isolation(app)
    before = app.request("GET", "/api/console/audit", headers=as_role("Auditor"))
    assert "No evidence anchor has been written yet" in before.text
    app.runtime.timer("anchor_evidence")
    audit = app.request("GET", "/api/console/audit", headers=as_role("Auditor"))
    assert audit.status == 200 and "Anchored at" in audit.text and "No evidence anchor" not in audit.text
    # the export form's target answers the auditor with the range it asks for
    day = re.search(r'name="from" required value="([0-9-]+)"', audit.text).group(1)
    export = app.request(
        "GET", "/api/evidence", headers=as_role("Auditor"), params={"from": day, "to": day, "format": "json"}
    )
    assert export.status == 200 and iid in export.text
    # the incident page links to its review, which the auditor may open
    page = app.request("GET", f"/api/console/incidents/{iid}", headers=as_role("Auditor"))
    review = re.search(r'href="(/api/incidents/[^"]+/review\?format=html)"', page.text).group(1)
    assert app.request("GET", review.replace("&amp;", "&"), headers=as_role("Auditor")).status == 200


def test_the_queue_is_paged_fifty_at_a_time_held_first(console):
    app = console
    from tests.containment.conftest import ingest, p1_alert

    held, _ = held_isolation(app)
    for i in range(55):
        ingest(app, p1_alert({"kind": "host", "name": f"ws-{i:03d}"}, sub=None, score=2))
    first = app.request("GET", "/api/console", headers=as_role("Responder"))
    rows = re.findall(r'<td data-label="Incident"><a href="[^"]+">([^<]+)</a>', first.text)
    assert len(rows) == 50 and rows[0] == held and "page 1 of 2" in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = app.request("GET", "/api/console", headers=as_role("Responder"), params={"page": "2"})
    more = re.findall(r'<td data-label="Incident"><a href="[^"]+">([^<]+)</a>', second.text)
    assert len(more) == 6 and not set(more) & set(rows) and 'rel="prev"' in second.text
