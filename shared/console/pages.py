"""The console's HTML (issue 16). Pure: page data in, ``Markup`` out.

No script at all and no inline style (the CSP forbids both): one stylesheet served by the app.
Everything an incident carries (titles, entity names, rule descriptions, timeline summaries) was
written by whoever sent an alert, so it reaches the page only through ``markup.render`` / ``esc``.
Priority and status are words, not colours; every control is a real link or button.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from shared.console.markup import Markup, join, render
from shared.console.queue import PAGE_SIZE, QueuePage, remaining, sla_due
from shared.links import portal_link
from shared.models import Incident, IncidentStatus, Priority, isoformat

BASE = "/api/console"
CSS = f"{BASE}/static/console.css"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their name and what the policy lets them do (links and forms shown)."""

    name: str
    roles: frozenset[str]
    may: frozenset[str] = frozenset()  # actions of the policy table this viewer may take


def incident_url(incident_id: str) -> str:
    return f"{BASE}/incidents/{quote(incident_id, safe='')}"


def layout(title: str, viewer: Viewer, body: Markup) -> str:
    roles = ", ".join(sorted(viewer.roles)) or "no role"
    auditor = render('<li><a href="$base/audit">Audit</a></li>', base=BASE) if "evidence" in viewer.may else ""
    return render(
        """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · SOC console</title>
<link rel="stylesheet" href="$css">
</head><body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><nav aria-label="Console"><ul>
<li><a href="$base">Queue</a></li>$auditor
</ul></nav><p class="who">Signed in as <strong>$name</strong> ($roles)</p></header>
<main id="main" tabindex="-1">
$body
</main></body></html>
""",
        title=title,
        css=CSS,
        base=BASE,
        auditor=auditor,
        name=viewer.name,
        roles=roles,
        body=body,
    )


def _label(kind: str, value: str) -> Markup:
    # Text first (readable without colour); the class only adds emphasis.
    return render('<span class="tag $kind-$cls">$value</span>', kind=kind, cls=value.lower(), value=value)


def _select(name: str, label: str, options: list[tuple[str, str]], current: str | None) -> Markup:
    opts = join(
        render('<option value="$v"$sel>$t</option>', v=v, t=t, sel=Markup(" selected") if v == (current or "") else "")
        for v, t in options
    )
    return render('<label>$label <select name="$name">$opts</select></label>', label=label, name=name, opts=opts)


# -- the queue ---------------------------------------------------------------------------------------------------------
def queue_page(page: QueuePage, viewer: Viewer, now: datetime) -> str:
    q = page.query
    filters = render(
        """<form class="filters" method="get" action="$base" role="search">
$partner $priority $status
<label>Search <input type="search" name="q" value="$search" placeholder="id or title"></label>
<button type="submit">Filter</button> <a href="$base">Clear</a>
</form>""",
        base=BASE,
        partner=_select("partner", "Partner", [("", "all"), *((p, p) for p in page.partners)], q.partner),
        priority=_select("priority", "Priority", [("", "all"), *((p.value, p.value) for p in Priority)], q.priority),
        status=_select(
            "status",
            "Status",
            [("open", "open"), *((s.value, s.value) for s in IncidentStatus), ("all", "all")],
            q.status,
        ),
        search=q.search or "",
    )
    rows = []
    for row in page.rows:
        inc = row.incident
        clock, due = sla_due(inc)
        rows.append(
            render(
                """<tr>
<td data-label="Incident"><a href="$url">$id</a></td>
<td data-label="Title">$title</td>
<td data-label="Partner">$partner</td>
<td data-label="Priority">$priority</td>
<td data-label="Status">$status$attention</td>
<td data-label="SLA">$clock: $remaining<br><small>$due</small></td>
</tr>""",
                url=incident_url(inc.id),
                id=inc.id,
                title=inc.title,
                partner=inc.partner_name or inc.partner_id or "SOC",
                priority=_label("priority", inc.priority.value),
                status=_label("status", inc.status.value),
                attention=render(' <strong class="attention">$a</strong>', a=row.attention) if row.attention else "",
                clock=clock,
                remaining=remaining(due, now) if inc.status.is_open else "closed",
                due=isoformat(due),
            )
        )
    table = (
        render(
            """<table class="queue"><caption>$caption</caption>
<thead><tr><th scope="col">Incident</th><th scope="col">Title</th><th scope="col">Partner</th>
<th scope="col">Priority</th><th scope="col">Status</th><th scope="col">SLA clock</th></tr></thead>
<tbody>$rows</tbody></table>""",
            caption=f"{page.total} incident(s) — held approvals and failed containments first; page {q.page} of {page.pages}",
            rows=join(rows),
        )
        if rows
        else render("<p>No incidents match.</p>")
    )
    nav = []
    params = {
        k: v for k, v in (("partner", q.partner), ("priority", q.priority), ("status", q.status), ("q", q.search)) if v
    }
    if q.page > 1:
        nav.append(
            render('<a rel="prev" href="$u">Previous page</a>', u=f"{BASE}?{urlencode({**params, 'page': q.page - 1})}")
        )
    if q.page < page.pages:
        nav.append(
            render('<a rel="next" href="$u">Next page</a>', u=f"{BASE}?{urlencode({**params, 'page': q.page + 1})}")
        )
    body = render(
        '<h1>Incident queue</h1>$filters$table<nav class="pages" aria-label="Pages">$nav</nav><p><small>$n per page · rendered $now</small></p>',
        filters=filters,
        table=table,
        nav=join(nav, " "),
        n=PAGE_SIZE,
        now=isoformat(now),
    )
    return layout("Queue", viewer, body)


# -- one incident ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    actions: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    timeline: list[Any]  # EvidenceEvent
    verdict: dict[str, Any]
    done: str | None = None
    extra_links: list[tuple[str, str]] = field(default_factory=list)


ACTIONS = (  # (policy action, button text) — the console's forms, in the order a responder needs them
    ("ack", "Acknowledge"),
    ("priority", "Change priority"),
    ("call", "Request a call"),
    ("approve", "Approve or reject held containment"),
    ("release", "Release containment"),
)


def _dl(pairs: list[tuple[str, Any]]) -> Markup:
    return render(
        "<dl>$items</dl>",
        items=join(render("<dt>$k</dt><dd>$v</dd>", k=k, v=v) for k, v in pairs if v not in (None, "")),
    )


def _action_rows(actions: list[dict[str, Any]]) -> Markup:
    if not actions:
        return render("<p>No containment actions.</p>")
    items = []
    for a in actions:
        before_after = []
        for nic in a.get("nics") or []:
            before_after.append(
                render(
                    "<li>NIC <code>$id</code>: before NSG <code>$prev</code> → after <code>$q</code> ($state$restored)</li>",
                    id=nic.get("id"),
                    prev=nic.get("previousNsg") or "none",
                    q=nic.get("quarantineNsg") or "—",
                    state=nic.get("state") or "",
                    restored=", restored" if nic.get("restored") else "",
                )
            )
        acct = a.get("account")
        if acct:
            before_after.append(
                render(
                    "<li>Account <code>$who</code>: enabled before: $before; disabled by us: $dis; sessions revoked: $rev$restored</li>",
                    who=acct.get("upn") or acct.get("id"),
                    before=_yes(acct.get("enabledBefore")),
                    dis=_yes(acct.get("disabledByUs")),
                    rev=_yes(acct.get("sessionsRevoked")),
                    restored="; restored" if acct.get("restored") else "",
                )
            )
        approval = a.get("approval")
        items.append(
            render(
                """<li class="action"><p><strong>$kind</strong> on <code>$target</code> — status: $status</p>
<p>$result</p>$extra<ul>$ba</ul></li>""",
                kind=a.get("kind"),
                target=a.get("targetDisplay") or a.get("target"),
                status=_label("status", str(a.get("status"))),
                result=a.get("result") or "",
                extra=_dl(
                    [
                        ("Guardrail", a.get("guardrail")),
                        ("Risk", a.get("risk")),
                        ("Reason", a.get("reason")),
                        (
                            "Decision",
                            f"{approval['decision']} by {approval['actor']} at {approval['at']}" if approval else None,
                        ),
                    ]
                ),
                ba=join(before_after),
            )
        )
    return render('<ul class="actions">$items</ul>', items=join(items))


def _yes(value: Any) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def incident_page(view: IncidentView, viewer: Viewer, now: datetime) -> str:
    inc = view.incident
    url = incident_url(inc.id)
    clock, due = sla_due(inc)
    buttons = join(
        render('<li><a class="button" href="$u/$a">$t</a></li>', u=url, a=action, t=text)
        for action, text in ACTIONS
        if action in viewer.may
    )
    rules = join(
        render(
            "<tr><td>$id</td><td>$d</td><td>$e</td><td>$s</td></tr>",
            id=r.rule_id,
            d=r.description,
            e=r.effect,
            s=r.score_after,
        )
        for r in inc.triage.rules_fired
    )
    alerts = join(
        render(
            "<tr><td>$title</td><td>$source</td><td>$sev</td><td>$seen</td><td>$link</td></tr>",
            title=a.title,
            source=a.source,
            sev=a.severity or "",
            seen=isoformat(a.observed_at),
            link=(
                render('<a href="$u" rel="noopener noreferrer">open in portal</a>', u=portal_link(a.link))
                if portal_link(a.link)
                else ""
            ),
        )
        for a in inc.alerts
    )
    entities = join(
        render(
            "<li>$kind: <code>$name</code></li>",
            kind=e.kind.value,
            name=e.name or e.upn or e.azure_resource_id or e.address or e.object_id or "",
        )
        for e in inc.entities
    )
    notes = join(
        render(
            "<tr><td>$ch</td><td>$kind</td><td>$status</td><td>$to</td><td>$at</td></tr>",
            ch=n.get("channel") or "",
            kind=n.get("kind") or n.get("event") or "",
            status=n.get("status") or "",
            to=n.get("recipient") or n.get("to") or "",
            at=n.get("createdAt") or "",
        )
        for n in view.notifications
    )
    timeline = join(
        render(
            "<tr><td>$seq</td><td>$at</td><td>$actor</td><td>$type</td><td>$summary</td></tr>",
            seq=e.seq,
            at=e.occurred_at,
            actor=e.actor,
            type=e.event_type,
            summary=e.summary,
        )
        for e in view.timeline
    )
    v = view.verdict
    verdict = (
        render('<p class="ok">Chain verified: $n events, intact.</p>', n=len(view.timeline))
        if v.get("valid")
        else render(
            '<p class="bad"><strong>Chain BROKEN</strong> at event $at: $why</p>',
            at=v.get("brokenAt"),
            why=v.get("reason") or "",
        )
    )
    links = join(
        render('<li><a href="$u">$t</a></li>', u=u, t=t)
        for u, t in [
            (f"/api/incidents/{quote(inc.id, safe='')}/review?format=html", "Post-incident review"),
            (f"/api/incidents/{quote(inc.id, safe='')}/verify", "Chain verification (JSON)"),
            *view.extra_links,
        ]
    )
    done = (
        render('<p class="done" role="status">Done: $d. The page below shows the new state.</p>', d=view.done)
        if view.done
        else ""
    )
    body = render(
        """$done<h1><span class="id">$id</span> $title</h1>
<p>$priority $status · score $score · partner $partner · $clock: $remaining (<small>$due</small>)</p>
<p>Acknowledged: $ack</p>
<ul class="buttons">$buttons</ul>
<section aria-labelledby="why"><h2 id="why">Why $priority_text</h2>
<table><thead><tr><th scope="col">Rule</th><th scope="col">What it matched</th><th scope="col">Effect</th><th scope="col">Score after</th></tr></thead><tbody>$rules</tbody></table></section>
<section aria-labelledby="alerts"><h2 id="alerts">Alerts ($alert_count)</h2>
<table><thead><tr><th scope="col">Title</th><th scope="col">Source</th><th scope="col">Severity</th><th scope="col">Observed</th><th scope="col">Source link</th></tr></thead><tbody>$alerts</tbody></table>
<h3>Entities</h3><ul>$entities</ul></section>
<section aria-labelledby="containment"><h2 id="containment">Containment</h2>$actions</section>
<section aria-labelledby="notify"><h2 id="notify">Notifications and escalation</h2>
<table><thead><tr><th scope="col">Channel</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">To</th><th scope="col">At</th></tr></thead><tbody>$notes</tbody></table></section>
<section aria-labelledby="integrity"><h2 id="integrity">Evidence chain</h2>$verdict<ul>$links</ul></section>
<section aria-labelledby="timeline"><h2 id="timeline">Timeline</h2>
<table><thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Actor</th><th scope="col">Event</th><th scope="col">Summary</th></tr></thead><tbody>$timeline</tbody></table></section>""",
        done=done,
        id=inc.id,
        title=inc.title,
        priority=_label("priority", inc.priority.value),
        priority_text=inc.priority.value,
        status=_label("status", inc.status.value),
        score=inc.score,
        partner=inc.partner_name or inc.partner_id or "SOC",
        clock=clock,
        remaining=remaining(due, now) if inc.status.is_open else "closed",
        due=isoformat(due),
        ack=f"{inc.acknowledged_by} at {isoformat(inc.acknowledged_at)}" if inc.acknowledged_at else "not yet",
        buttons=buttons,
        rules=rules,
        alert_count=inc.alert_count or len(inc.alerts),
        alerts=alerts,
        entities=entities,
        actions=_action_rows(view.actions),
        notes=notes,
        verdict=verdict,
        links=links,
        timeline=timeline,
    )
    return layout(f"{inc.id} {inc.title}", viewer, body)


# -- "what will happen" + the form -------------------------------------------------------------------------------------
def release_plan(actions: list[dict[str, Any]]) -> list[str]:
    """The exact NSGs and accounts a release restores, from the containment records."""
    out = []
    for a in actions:
        if a.get("status") in ("held", "approved"):
            out.append(
                f"withdraw the {a.get('kind')} action on {a.get('targetDisplay') or a.get('target')} before it runs"
            )
        for nic in a.get("nics") or []:
            if nic.get("changedByUs") and not nic.get("restored"):
                out.append(
                    f"NIC {nic.get('id')}: put back NSG {nic.get('previousNsg') or '(none: detach the quarantine NSG)'}"
                )
        acct = a.get("account")
        if acct and acct.get("disabledByUs") and not acct.get("restored"):
            out.append(f"account {acct.get('upn') or acct.get('id')}: enable it again")
    return out


def confirm_page(
    action: str, inc: Incident, actions: list[dict[str, Any]], viewer: Viewer, token: str, error: str | None = None
) -> str:
    url = incident_url(inc.id)
    held = [a for a in actions if a.get("status") == "held"]
    if action == "ack":
        what = ["record that contact is made, as you", "stop the phone escalation at once"]
        fields = render('<label>Note (optional) <textarea name="note" rows="3" maxlength="2000"></textarea></label>')
    elif action == "priority":
        what = [
            f"change the priority from {inc.priority.value}; a raise to P1 starts the P1 runbook (containment)",
            "lowering never releases containment; the change is evidenced and emailed",
        ]
        fields = render(
            '$sel<label>Reason <textarea name="reason" rows="3" maxlength="2000" required></textarea></label>',
            sel=_select("priority", "New priority", [(p.value, p.value) for p in Priority], inc.priority.value),
        )
    elif action == "call":
        what = [f"start the phone escalation for this {inc.priority.value} incident (P1 and P2 only)"]
        fields = render('<label>Reason <textarea name="reason" rows="3" maxlength="2000" required></textarea></label>')
    elif action == "approve":
        what = [
            f"approve: run {a.get('kind')} on {a.get('targetDisplay') or a.get('target')} (risk: {a.get('risk') or 'not stated'})"
            for a in held
        ] or ["nothing is held for approval now"]
        what.append("reject: these actions are never executed for this incident")
        fields = render(
            """<fieldset><legend>Decision</legend>
<label><input type="radio" name="decision" value="approve" checked> Approve</label>
<label><input type="radio" name="decision" value="reject"> Reject</label></fieldset>
<label>Reason <textarea name="reason" rows="3" maxlength="2000"></textarea></label>"""
        )
    else:  # release
        what = release_plan(actions) or ["nothing this incident changed is left to restore"]
        fields = render('<label>Reason <textarea name="reason" rows="3" maxlength="2000" required></textarea></label>')
    title = dict(ACTIONS)[action]
    body = render(
        """<p><a href="$url">← Back to $id</a></p>
<h1>$title: <span class="id">$id</span></h1>
<p>$incident_title</p>$error
<h2>What will happen</h2><ul class="plan">$what</ul>
<form method="post" action="$url/$action">
<input type="hidden" name="csrf" value="$token">
$fields
<p><button type="submit">$title</button> <a href="$url">Cancel</a></p>
</form>""",
        url=url,
        id=inc.id,
        title=title,
        incident_title=inc.title,
        error=render('<p class="bad" role="alert">Not done: $e</p>', e=error) if error else "",
        what=join(render("<li>$w</li>", w=w) for w in what),
        action=action,
        token=token,
        fields=fields,
    )
    return layout(f"{title} {inc.id}", viewer, body)


def message_page(title: str, message: str, viewer: Viewer | None) -> str:
    body = render('<h1>$t</h1><p>$m</p><p><a href="$base">Back to the queue</a></p>', t=title, m=message, base=BASE)
    return layout(title, viewer or Viewer("nobody", frozenset()), body)


def audit_page(viewer: Viewer, anchor: dict[str, Any] | None, today: str) -> str:
    anchor_html = (
        _dl(
            [
                ("Anchored at", anchor.get("anchoredAt")),
                ("Name", anchor.get("name")),
                ("Incidents", anchor.get("incidents")),
            ]
        )
        if anchor
        else render("<p>No evidence anchor has been written yet.</p>")
    )
    body = render(
        """<h1>Audit</h1>
<section aria-labelledby="export"><h2 id="export">Export evidence for a range</h2>
<form method="get" action="/api/evidence">
<label>From <input type="date" name="from" required value="$today"></label>
<label>To <input type="date" name="to" required value="$today"></label>
<label>Format <select name="format"><option value="csv">CSV</option><option value="json">JSON</option><option value="jsonl">JSON lines</option></select></label>
<button type="submit">Export</button></form></section>
<section aria-labelledby="anchor"><h2 id="anchor">Latest evidence anchor</h2>$anchor</section>
<section aria-labelledby="reviews"><h2 id="reviews">Reviews</h2><p>Open any incident from the <a href="$base?status=all">queue (all statuses)</a>; its page links to its review.</p></section>""",
        today=today,
        anchor=anchor_html,
        base=BASE,
    )
    return layout("Audit", viewer, body)
