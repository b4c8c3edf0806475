"""Email (HTML + plain text) and spoken call text, per priority and per event (docs/spec/notification.md). Pure.

Everything that came from an alert (titles, entity names, error texts) or a
person (actor, reason, note) is attacker-controlled: it is only ever placed
in a message through ``esc`` (HTML) or ``plain`` (text, subject, speech),
never concatenated into markup. Links are built only from
``CALLBACK_BASE_URL`` with quoted path segments, or taken from an alert when
they are plain ``https`` URLs, and always escaped.

A message is first built as a small document (``shared.notify.document.Doc``)
and then rendered to HTML and to text, so the two versions always say the same
thing. Containment actions become message lines in ``shared.notify.actions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.links import defang, portal_link  # issue 12
from shared.models import Incident, Priority, isoformat
from shared.notify.actions import ActionLine, ActionState, action_lines
from shared.notify.document import (
    MAX_SUBJECT,
    PRIORITY_COLOURS,
    Doc,
    plain,
    render_html,
    render_text,
    safe_link,
)
from shared.response_plan import no_containment_reason

__all__ = [  # what other modules and the tests import from here
    "SPOKEN_ACKNOWLEDGED",
    "SPOKEN_GOODBYE",
    "SPOKEN_RETRY",
    "ActionLine",
    "ActionState",
    "MessageContext",
    "NotifyEvent",
    "RenderedMail",
    "action_lines",
    "evidence_links",
    "render",
    "render_digest",
    "safe_link",
    "spoken_summary",
]

MAX_SPOKEN_TITLE = 140


class NotifyEvent(StrEnum):
    """Why a message is sent: one template each."""

    NEW_INCIDENT = "new-incident"
    PRIORITY_CHANGED = "priority-changed"
    CONTAINMENT_HELD = "containment-held"
    CONTAINMENT_FAILED = "containment-failed"
    RELEASED = "released"
    SLA_BREACHED = "sla-breached"
    ESCALATION_EXHAUSTED = "escalation-exhausted"
    ACKNOWLEDGED = "acknowledged"
    DIGEST = "digest"


@dataclass
class MessageContext:
    """What a message is about. ``incident`` is the current state; the rest depends on the event."""

    incident: Incident
    event: NotifyEvent
    base_url: str | None = None
    actions: list[ActionLine] = field(default_factory=list)
    previous_priority: str | None = None
    actor: str | None = None
    reason: str | None = None
    breaches: list[str] = field(default_factory=list)
    escalation: dict[str, Any] = field(default_factory=dict)
    routed_to_soc: bool = False
    timezone: str = "UTC"
    console_base_url: str | None = None  # issue 16: CONSOLE_BASE_URL (links to the incident's console page)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str
    importance: str  # "high" | "normal" | "low"


def evidence_links(base_url: str | None, incident_id: str) -> list[tuple[str, str]]:
    """(label, url) of the incident's evidence on this app (function key required)."""
    base = safe_link((base_url or "").rstrip("/"))
    if not base:
        return []
    iid = quote(incident_id, safe="")
    return [
        ("Incident, actions and timeline", f"{base}/api/incidents/{iid}"),
        ("Evidence chain verification", f"{base}/api/incidents/{iid}/verify"),
        ("Post-incident review", f"{base}/api/incidents/{iid}/review"),
    ]


# -- issue 16: the console ---------------------------------------------------------------------------
def console_link(base_url: str | None, incident_id: str) -> str | None:
    """The incident's console page (a page: opening it never acts), or None without a safe base URL."""
    base = safe_link((base_url or "").rstrip("/"))
    return f"{base}/api/console/incidents/{quote(incident_id, safe='')}" if base else None


def short_code(incident_id: str) -> str:
    """The code a person hears on the phone and types into the console's search: the id's last 6 characters."""
    return incident_id[-6:].upper()


def _local(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "—"
    try:
        local = moment.astimezone(ZoneInfo(tz))
    except Exception:
        local = moment
    return f"{isoformat(moment)} ({local:%a %d %b %H:%M} {tz})"


# -- content ------------------------------------------------------------------------------------

_NEXT_STEPS = {
    Priority.P1: [
        "Acknowledge now: press 1 on our call, or reply to the SOC, so the phone escalation stops.",
        "Check the actions below; contained resources stay isolated until you ask for their release.",
        "Tell us when you are ready for release (reset credentials of disabled accounts first).",
    ],
    Priority.P2: [
        "Investigate within 2 hours (response SLA for a Major incident).",
        "Reply to the SOC if you want us to phone your on-call contact or to raise the priority.",
    ],
    Priority.P3: ["Review within 24 hours (response SLA for a Minor incident)."],
    Priority.P4: ["No immediate action is expected; review by the end of the next business day."],
}
_NSG_NOTE = (
    "Network isolation changes which new connections are allowed; connections that were already open "
    "may survive the NSG change until they close. We do not restart the VM by default because a restart "
    "destroys memory evidence — a restart is opt-in: ask the SOC if you want one."
)


def _banner(incident: Incident, what: str) -> str:
    p = incident.priority
    return f"{p.value} {p.partner_severity} — {what}"


def _subject(incident: Incident, what: str) -> str:
    p = incident.priority
    return plain(f"[{p.value} {p.partner_severity}] {what}: {incident.id} {incident.title}", MAX_SUBJECT)


def _facts(doc: Doc, ctx: MessageContext) -> None:
    inc = ctx.incident
    entities = ", ".join(plain(e.display, 120) for e in inc.entities[:10]) + (" …" if len(inc.entities) > 10 else "")
    doc.kv(
        [
            ("Incident", inc.id),
            ("Title", inc.title),
            (
                "Priority",
                f"{inc.priority.value} {inc.priority.label} (partner severity {inc.priority.partner_severity})",
            ),
            ("Score", f"{inc.score}/10"),
            ("Status", inc.status.value),
            ("Partner", inc.partner_name or inc.partner_id or "no partner matched: routed to the SOC"),
            ("First seen", _local(inc.first_seen_at, ctx.timezone)),
            ("Received", _local(inc.sla.received_at, ctx.timezone)),
            ("Alerts", str(inc.alert_count)),
            ("Entities", entities),
            ("Tactics", ", ".join(inc.tactics[:10])),
            (
                "Acknowledged",
                f"{_local(inc.acknowledged_at, ctx.timezone)} by {inc.acknowledged_by}"
                if inc.acknowledged_at
                else None,
            ),
        ]
    )


def _what_happened(doc: Doc, ctx: MessageContext) -> None:
    inc = ctx.incident
    doc.h("What happened")
    fired = ", ".join(h.rule_id for h in inc.triage.rules_fired[:8])
    doc.p(
        f"{len(inc.alerts)} alert(s) were grouped into this incident and scored {inc.score}/10 "
        f"({inc.priority.value} {inc.priority.label}); scoring rules that fired: {fired or 'none'}."
    )
    doc.bullets(
        [
            f"{a.source}: {a.title} (severity {a.severity or 'n/a'}, observed {isoformat(a.observed_at)})"
            for a in inc.alerts[-10:]
        ]
    )


def _actions(doc: Doc, ctx: MessageContext) -> None:
    doc.h("Actions taken and their results")
    doc.actions(ctx.actions)
    if any(
        a.isolates_vm
        and a.state
        in (ActionState.DONE, ActionState.ALREADY, ActionState.HELD, ActionState.PLANNED, ActionState.PENDING)
        for a in ctx.actions
    ):
        doc.notice(_NSG_NOTE, "warn")


def _links(doc: Doc, ctx: MessageContext) -> None:
    links = evidence_links(ctx.base_url, ctx.incident.id)
    console = console_link(ctx.console_base_url, ctx.incident.id)  # issue 16
    if console:
        doc.h("Open in the console")
        doc.links([("Incident page (acknowledge, approve, release — each asks you to confirm)", console)])
    alert_links = []
    as_text = []  # issue 12: only portal links are clickable; anything else a sender wrote is defanged text
    for a in ctx.incident.alerts[-5:]:
        url = portal_link(safe_link(a.link))
        if url:
            alert_links.append((f"{a.source} alert: {plain(a.title, 80)}", url))
        elif a.link:
            as_text.append(
                f"{a.source} alert link (not a Microsoft portal, not clickable): {defang(plain(a.link, 200))}"
            )
    if links or alert_links or as_text:
        doc.h("Evidence")
        doc.links(links + alert_links)
        for line in as_text:
            doc.p(line)
        if links:
            doc.p("The evidence links need a function key or an Entra sign-in of the SOC.")


def _next(doc: Doc, steps: list[str]) -> None:
    doc.h("What you should do next")
    doc.bullets(steps)


def render(ctx: MessageContext) -> RenderedMail:
    """The email for ``ctx.event`` about ``ctx.incident``."""
    inc, ev = ctx.incident, ctx.event
    colour = PRIORITY_COLOURS[inc.priority.value]
    steps = list(_NEXT_STEPS[inc.priority])
    failed = [a for a in ctx.actions if a.failed]
    held = [a for a in ctx.actions if a.held]
    importance = "high" if inc.priority in (Priority.P1, Priority.P2) else "normal"
    if ev == NotifyEvent.NEW_INCIDENT:
        what = "New security incident"
    elif ev == NotifyEvent.PRIORITY_CHANGED:
        what = f"Priority changed {ctx.previous_priority or '?'} → {inc.priority.value}"
    elif ev == NotifyEvent.CONTAINMENT_HELD:
        what = "Containment held for approval"
    elif ev == NotifyEvent.CONTAINMENT_FAILED:
        what, importance = "Containment FAILED — action needed", "high"
    elif ev == NotifyEvent.RELEASED:
        what = "Contained resources released"
    elif ev == NotifyEvent.SLA_BREACHED:
        what, importance = f"SLA breached ({', '.join(ctx.breaches) or 'target missed'})", "high"
    elif ev == NotifyEvent.ESCALATION_EXHAUSTED:
        what, importance = "Phone escalation exhausted — nobody acknowledged", "high"
    elif ev == NotifyEvent.ACKNOWLEDGED:
        what = "Incident acknowledged"
    else:
        raise ValueError(f"render() does not make {ev.value} messages (see render_digest)")
    doc = Doc(title=f"{inc.title}", banner=_banner(inc, what), colour=colour)

    # issue 13 (never silent): a P1 nothing could be contained for says so, and why, before anything else.
    if (
        inc.priority == Priority.P1
        and ev in (NotifyEvent.NEW_INCIDENT, NotifyEvent.PRIORITY_CHANGED)
        and not ctx.actions
        and (why := no_containment_reason(inc))
    ):
        doc.notice(f"Nothing could be contained automatically: {why}. Please act on the resources yourself.", "alert")
        steps = ["Contain the named resources yourself now (nothing was contained automatically)."] + steps
    if ctx.routed_to_soc:
        doc.notice("No partner matched this alert: it was routed to the SOC's own contacts.", "warn")
    if ev == NotifyEvent.PRIORITY_CHANGED:
        previous = Priority(ctx.previous_priority) if ctx.previous_priority else None
        raised = previous is not None and previous.rank > inc.priority.rank
        doc.notice(
            f"Priority {'raised' if raised else 'lowered'} from {ctx.previous_priority} to "
            f"{inc.priority.value} by {plain(ctx.actor or 'soc-responder', 200)}: "
            f"{plain(ctx.reason or 'no reason given', 500)}",
            "alert" if raised else "info",
        )
        if not raised and any(a.state in (ActionState.DONE, ActionState.ALREADY) for a in ctx.actions):
            doc.notice(
                "Containment stays in place: lowering the priority never releases contained resources. "
                "Ask the SOC for a release when you are ready.",
                "warn",
            )
        if not raised:
            steps = [s for s in steps if not s.startswith("Acknowledge now")]
    if ev == NotifyEvent.CONTAINMENT_FAILED:
        doc.notice(
            f"{len(failed)} containment action(s) failed. The affected resources are NOT contained; "
            "please act on them yourself now (see below). The SOC has been alerted.",
            "alert",
        )
        steps = [
            (
                "Contain the resources marked failed yourself now: isolate the VM's network or disable the account "
                "in your tenant, then tell the SOC."
            )
        ] + steps
    if ev == NotifyEvent.CONTAINMENT_HELD or (held and ev in (NotifyEvent.NEW_INCIDENT, NotifyEvent.PRIORITY_CHANGED)):
        doc.notice(f"{len(held)} containment action(s) are held for approval and have NOT been executed.", "warn")
        steps = [
            (
                "Decide on the held actions now: the SOC approves or rejects them on your instruction "
                "(POST /api/incidents/{id}/approve)."
            )
        ] + steps
    if ev == NotifyEvent.RELEASED:
        doc.notice(f"Released by {plain(ctx.actor or 'soc-responder', 200)}: {plain(ctx.reason or '', 500)}", "info")
        steps = [
            (
                "Confirm remediation is complete (credentials rotated, malware removed) and monitor the released "
                "resources closely for the next days."
            )
        ]
    if ev == NotifyEvent.SLA_BREACHED:
        doc.notice(
            "A service commitment was missed for this incident: "
            + "; ".join(plain(b, 200) for b in ctx.breaches)
            + ".",
            "alert",
        )
        steps = ["SOC duty manager: take over this incident now and reach the partner's contacts."]
    if ev == NotifyEvent.ESCALATION_EXHAUSTED:
        esc = ctx.escalation or {}
        doc.notice(
            f"{esc.get('attempts', '?')} call attempt(s) since {esc.get('startedAt', '?')} were not "
            f"acknowledged ({plain(esc.get('reason') or 'limit reached', 300)}). No further calls will be "
            "placed automatically.",
            "alert",
        )
        steps = [
            (
                "SOC duty manager: reach the partner by other means (alternate numbers, account manager) and "
                "record the acknowledgement (POST /api/incidents/{id}/ack)."
            )
        ]
    if ev == NotifyEvent.ACKNOWLEDGED:
        doc.notice(
            f"Acknowledged by {plain(inc.acknowledged_by or ctx.actor or 'unknown', 200)}; "
            "the phone escalation has stopped.",
            "info",
        )
    _facts(doc, ctx)
    _what_happened(doc, ctx)
    _actions(doc, ctx)
    _next(doc, [s.replace("{id}", quote(inc.id, safe="")) for s in steps])
    _links(doc, ctx)
    return RenderedMail(
        subject=_subject(inc, what), html=render_html(doc), text=render_text(doc), importance=importance
    )


def render_digest(
    incidents: list[Incident],
    partner_name: str,
    day: str,
    base_url: str | None,
    console_base_url: str | None = None,
) -> RenderedMail:
    """The daily P4 digest for one partner (or the SOC); each incident links to its console page (issue 16)."""
    doc = Doc(
        title=f"{len(incidents)} low-priority incident(s) — {day}",
        banner=f"P4 Minor — daily digest for {partner_name}",
        colour=PRIORITY_COLOURS["P4"],
    )
    doc.p(
        "These incidents were scored P4 (informational or expected behaviour). No containment was applied. "
        "Review them by the end of the next business day."
    )
    rows = []
    for inc in incidents:
        link = (evidence_links(base_url, inc.id) or [("", "")])[0][1]
        rows.append([inc.id, inc.title, f"{inc.score}/10", isoformat(inc.created_at), inc.status.value, link or "—"])
    doc.table(["Incident", "Title", "Score", "Received", "Status", "Evidence"], rows)
    # issue 16: each incident's console page, as every other email links it (a page: opening it never acts)
    consoles = [(f"{inc.id} — {plain(inc.title, 80)}", console_link(console_base_url, inc.id)) for inc in incidents]
    if all(url for _, url in consoles):
        doc.h("Open in the console")
        doc.links([(label, str(url)) for label, url in consoles])
    _next(doc, list(_NEXT_STEPS[Priority.P4]) + ["Reply to the SOC to raise any of these to a higher priority."])
    subject = plain(
        f"[P4 Minor] Daily digest {day}: {len(incidents)} low-priority incident(s) for {partner_name}", MAX_SUBJECT
    )
    return RenderedMail(subject=subject, html=render_html(doc), text=render_text(doc), importance="low")


def spoken_summary(incident: Incident, attempt: int) -> str:
    """What the call says before asking for the key press (plain text for text-to-speech)."""
    who = plain(incident.partner_name or "the security operations centre", 80)
    title = plain(incident.title, MAX_SPOKEN_TITLE)
    return (
        f"This is an automated call from the security operations centre for {who}. "
        f"A priority {incident.priority.rank}, {incident.priority.partner_severity}, security incident needs "
        f"your attention: {title}. Details were sent by email. "
        f"In the console, the incident code is {' '.join(short_code(incident.id))}. "  # issue 16
        f"This is call attempt {attempt}. "
        "Press 1 to acknowledge and stop further calls."
    )


SPOKEN_ACKNOWLEDGED = "Thank you. The incident is acknowledged and further calls are cancelled. Goodbye."
SPOKEN_RETRY = "Sorry, that was not a 1. Press 1 to acknowledge the incident."
SPOKEN_GOODBYE = "No acknowledgement received. We will call again. Goodbye."
