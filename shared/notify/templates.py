"""Email (HTML + plain text) and spoken call text, per priority and per event (SPEC 5). Pure.

Everything that came from an alert (titles, entity names, error texts) or a
person (actor, reason, note) is attacker-controlled: it is only ever placed
in a message through ``_esc`` (HTML) or ``_plain`` (text, subject, speech),
never concatenated into markup. Links are built only from
``CALLBACK_BASE_URL`` with quoted path segments, or taken from an alert when
they are plain ``https`` URLs, and always escaped.

A message is first built as a small document (``_Doc``) and then rendered to
HTML and to text, so the two versions always say the same thing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from shared.models import Incident, Priority, isoformat

MAX_SUBJECT = 200
MAX_FIELD = 500
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


class ActionState(StrEnum):
    DONE = "done"
    ALREADY = "already in place"
    HELD = "held for approval"
    PLANNED = "planned (dry-run: nothing changed)"
    FAILED = "failed"
    SKIPPED = "skipped"
    PARTNER = "no action by us: the partner acts"
    RELEASED = "released"
    PENDING = "in progress"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn (released before it ran)"


_STATE_WORDS: tuple[tuple[ActionState, tuple[str, ...]], ...] = (
    (ActionState.FAILED, ("fail", "error")),
    (ActionState.REJECTED, ("reject", "blocked")),
    (ActionState.WITHDRAWN, ("withdrawn",)),
    (ActionState.PENDING, ("progress", "approved", "pending", "running")),
    (ActionState.RELEASED, ("releas", "restor")),
    (ActionState.ALREADY, ("already", "unchanged", "noop", "no-op")),
    (ActionState.HELD, ("held", "hold", "approval", "awaiting")),
    (ActionState.PLANNED, ("plan", "dry")),
    (ActionState.SKIPPED, ("skip", "protected", "never")),
    (ActionState.PARTNER, ("none", "partner", "finding")),
    (
        ActionState.DONE,
        ("done", "execut", "contain", "success", "succeed", "applied", "complete", "isolat", "disabled", "ok"),
    ),
)


@dataclass(frozen=True)
class ActionLine:
    """One containment action as the partner reads it."""

    kind: str
    target: str
    state: ActionState
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.state == ActionState.FAILED

    @property
    def held(self) -> bool:
        return self.state == ActionState.HELD

    @property
    def isolates_vm(self) -> bool:
        return "isolate" in self.kind or "vm" in self.kind.lower()

    def wire(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "state": self.state.value, "detail": self.detail}


def _state_of(*words: Any) -> ActionState:
    for word in words:
        if not isinstance(word, str) or not word:
            continue
        w = word.lower()
        for state, stems in _STATE_WORDS:
            if any(s in w for s in stems):
                return state
    return ActionState.PENDING


def action_lines(records: Iterable[dict], failures: Iterable[Any] = ()) -> list[ActionLine]:
    """Containment actions (ContainmentActions rows and the runbook's failure list) as message lines.

    Tolerant of shape: a row may carry the planned action nested under
    ``action`` and its outcome under ``status``/``outcome``/``result``.
    Failures not already represented by a row are appended.
    """
    lines: list[ActionLine] = []
    seen: dict[str, int] = {}
    for r in records or ():
        if not isinstance(r, dict):
            continue
        planned = r.get("action") if isinstance(r.get("action"), dict) else {}
        kind = str(r.get("kind") or planned.get("kind") or "action")
        target = str(
            r.get("targetDisplay") or planned.get("targetDisplay") or r.get("target") or planned.get("target") or ""
        )
        status = r.get("status") or r.get("outcome") or r.get("state")
        result = r.get("result")
        detail = (
            r.get("error")
            or r.get("failureReason")
            or (result if isinstance(result, str) else "")
            or r.get("detail")
            or r.get("summary")
            or r.get("reason")
            or planned.get("reason")
            or ""
        )
        # The status word decides; the decision of the plan only when no outcome is recorded yet.
        state = _state_of(status) if status else _state_of(r.get("decision"), planned.get("decision"))
        if r.get("error") and state not in (ActionState.FAILED, ActionState.REJECTED):
            state = ActionState.FAILED
        key = str(r.get("actionId") or planned.get("actionId") or f"{kind}:{target}")
        seen[key] = len(lines)
        lines.append(ActionLine(kind, target, state, str(detail or "")))
    for f in failures or ():
        if isinstance(f, dict):
            key = str(f.get("actionId") or f"{f.get('kind')}:{f.get('targetDisplay') or f.get('target')}")
            reason = str(f.get("error") or f.get("reason") or f.get("message") or "failed")
            if key in seen:
                i = seen[key]
                if not lines[i].failed:
                    lines[i] = ActionLine(lines[i].kind, lines[i].target, ActionState.FAILED, reason)
                continue
            lines.append(
                ActionLine(
                    str(f.get("kind") or "action"),
                    str(f.get("targetDisplay") or f.get("target") or ""),
                    ActionState.FAILED,
                    reason,
                )
            )
        elif f:
            lines.append(ActionLine("action", "", ActionState.FAILED, str(f)))
    return lines


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


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str
    importance: str  # "high" | "normal" | "low"


# -- sanitising ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _plain(value: Any, limit: int = MAX_FIELD, single_line: bool = True) -> str:
    """Text safe to show as text: no control or bidi-override characters, bounded length."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if single_line:
        text = " ".join(text.split())
    text = _CONTROL.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(value: Any, limit: int = MAX_FIELD) -> str:
    """Text safe inside HTML element content and quoted attributes."""
    return html.escape(_plain(value, limit), quote=True)


def safe_link(url: Any) -> str | None:
    """``url`` if it is a plain https (or loopback http) URL without credentials, else None."""
    if not isinstance(url, str) or len(url) > 2000 or _CONTROL.search(url) or any(c in url for c in ' "<>\\`'):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username or parts.password or not parts.hostname:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")):
        return url
    return None


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


def _local(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "—"
    try:
        local = moment.astimezone(ZoneInfo(tz))
    except Exception:
        local = moment
    return f"{isoformat(moment)} ({local:%a %d %b %H:%M} {tz})"


# -- the document model ------------------------------------------------------------------------


@dataclass
class _Block:
    kind: str  # "h" | "p" | "notice" | "kv" | "bullets" | "actions" | "links" | "table"
    text: str = ""
    rows: list[Any] = field(default_factory=list)
    tone: str = "info"  # notice: "info" | "warn" | "alert"


@dataclass
class _Doc:
    title: str
    banner: str
    colour: str
    blocks: list[_Block] = field(default_factory=list)

    def h(self, text: str) -> None:
        self.blocks.append(_Block("h", text))

    def p(self, text: str) -> None:
        self.blocks.append(_Block("p", text))

    def notice(self, text: str, tone: str = "info") -> None:
        self.blocks.append(_Block("notice", text, tone=tone))

    def kv(self, rows: list[tuple[str, Any]]) -> None:
        self.blocks.append(_Block("kv", rows=[(k, v) for k, v in rows if v not in (None, "", [])]))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(_Block("bullets", rows=list(items)))

    def actions(self, lines: list[ActionLine]) -> None:
        self.blocks.append(_Block("actions", rows=list(lines)))

    def links(self, links: list[tuple[str, str]]) -> None:
        if links:
            self.blocks.append(_Block("links", rows=list(links)))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(_Block("table", text="\x1f".join(header), rows=rows))


_COLOURS = {"P1": "#b00020", "P2": "#d35400", "P3": "#b7950b", "P4": "#2e7d32"}
_TONES = {"info": ("#eef4fb", "#1f4e79"), "warn": ("#fff4e5", "#8a4b00"), "alert": ("#fdecea", "#8b0000")}
_CELL = 'style="padding:4px 8px;border:1px solid #ddd;text-align:left;vertical-align:top"'


def _render_html(doc: _Doc) -> str:
    out = [
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>',
        '<body style="font-family:Segoe UI,Arial,sans-serif;font-size:14px;color:#222">',
        f'<div style="background:{doc.colour};color:#fff;padding:10px 14px;font-weight:bold">{_esc(doc.banner)}</div>',
        f'<h2 style="margin:14px 0 8px 0">{_esc(doc.title, MAX_SUBJECT)}</h2>',
    ]
    for b in doc.blocks:
        if b.kind == "h":
            out.append(f'<h3 style="margin:16px 0 6px 0">{_esc(b.text)}</h3>')
        elif b.kind == "p":
            out.append(f"<p>{_esc(b.text, 2000)}</p>")
        elif b.kind == "notice":
            bg, fg = _TONES.get(b.tone, _TONES["info"])
            out.append(
                f'<p style="background:{bg};color:{fg};padding:8px 10px;border-left:4px solid {fg}">'
                f"{_esc(b.text, 2000)}</p>"
            )
        elif b.kind == "kv":
            rows = "".join(f"<tr><th {_CELL}>{_esc(k)}</th><td {_CELL}>{_esc(v)}</td></tr>" for k, v in b.rows)
            out.append(f'<table style="border-collapse:collapse">{rows}</table>')
        elif b.kind == "bullets":
            out.append("<ul>" + "".join(f"<li>{_esc(i, 1000)}</li>" for i in b.rows) + "</ul>")
        elif b.kind == "actions":
            if not b.rows:
                out.append("<p>No containment action was taken or planned.</p>")
                continue
            head = "".join(f"<th {_CELL}>{h}</th>" for h in ("Action", "Target", "Result", "Detail"))
            body = "".join(
                f"<tr><td {_CELL}>{_esc(a.kind)}</td><td {_CELL}>{_esc(a.target)}</td>"
                f'<td {_CELL}><span style="font-weight:bold;color:{"#b00020" if a.failed else "#222"}">'
                f"{_esc(a.state.value)}</span></td><td {_CELL}>{_esc(a.detail)}</td></tr>"
                for a in b.rows
            )
            out.append(f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>')
        elif b.kind == "links":
            out.append(
                "<ul>"
                + "".join(
                    f'<li><a href="{html.escape(url, quote=True)}">{_esc(label)}</a></li>' for label, url in b.rows
                )
                + "</ul>"
            )
        elif b.kind == "table":
            head = "".join(f"<th {_CELL}>{_esc(h)}</th>" for h in b.text.split("\x1f"))
            body = "".join("<tr>" + "".join(f"<td {_CELL}>{_esc(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            out.append(f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>')
    out.append(
        '<p style="color:#666;font-size:12px;margin-top:20px">Sent by soc-responder. Every notification '
        "and call attempt is recorded in the incident's tamper-evident evidence.</p></body></html>"
    )
    return "".join(out)


def _render_text(doc: _Doc) -> str:
    out = [_plain(doc.banner), _plain(doc.title, MAX_SUBJECT), ""]
    for b in doc.blocks:
        if b.kind == "h":
            out += ["", _plain(b.text).upper()]
        elif b.kind in ("p", "notice"):
            out.append(("! " if b.tone in ("warn", "alert") and b.kind == "notice" else "") + _plain(b.text, 2000))
        elif b.kind == "kv":
            out += [f"{_plain(k)}: {_plain(v)}" for k, v in b.rows]
        elif b.kind == "bullets":
            out += [f"- {_plain(i, 1000)}" for i in b.rows]
        elif b.kind == "actions":
            if not b.rows:
                out.append("No containment action was taken or planned.")
            out += [
                f"- {_plain(a.kind)} {_plain(a.target)}: {a.state.value.upper() if a.failed else a.state.value}"
                + (f" ({_plain(a.detail)})" if a.detail else "")
                for a in b.rows
            ]
        elif b.kind == "links":
            out += [f"- {_plain(label)}: {url}" for label, url in b.rows]
        elif b.kind == "table":
            out.append(" | ".join(_plain(h) for h in b.text.split("\x1f")))
            out += [" | ".join(_plain(c) for c in row) for row in b.rows]
    out += [
        "",
        "Sent by soc-responder. Every notification and call attempt is recorded in the incident's "
        "tamper-evident evidence.",
    ]
    return "\n".join(out) + "\n"


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
    return _plain(f"[{p.value} {p.partner_severity}] {what}: {incident.id} {incident.title}", MAX_SUBJECT)


def _facts(doc: _Doc, ctx: MessageContext) -> None:
    inc = ctx.incident
    entities = ", ".join(_plain(e.display, 120) for e in inc.entities[:10]) + (" …" if len(inc.entities) > 10 else "")
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


def _what_happened(doc: _Doc, ctx: MessageContext) -> None:
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


def _actions(doc: _Doc, ctx: MessageContext) -> None:
    doc.h("Actions taken and their results")
    doc.actions(ctx.actions)
    if any(
        a.isolates_vm
        and a.state
        in (ActionState.DONE, ActionState.ALREADY, ActionState.HELD, ActionState.PLANNED, ActionState.PENDING)
        for a in ctx.actions
    ):
        doc.notice(_NSG_NOTE, "warn")


def _links(doc: _Doc, ctx: MessageContext) -> None:
    links = evidence_links(ctx.base_url, ctx.incident.id)
    alert_links = []
    for a in ctx.incident.alerts[-5:]:
        url = safe_link(a.link)
        if url:
            alert_links.append((f"{a.source} alert: {_plain(a.title, 80)}", url))
    if links or alert_links:
        doc.h("Evidence")
        doc.links(links + alert_links)
        if links:
            doc.p("The evidence links need a function key or an Entra sign-in of the SOC.")


def _next(doc: _Doc, steps: list[str]) -> None:
    doc.h("What you should do next")
    doc.bullets(steps)


def render(ctx: MessageContext) -> RenderedMail:
    """The email for ``ctx.event`` about ``ctx.incident``."""
    inc, ev = ctx.incident, ctx.event
    colour = _COLOURS[inc.priority.value]
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
    doc = _Doc(title=f"{inc.title}", banner=_banner(inc, what), colour=colour)

    if ctx.routed_to_soc:
        doc.notice("No partner matched this alert: it was routed to the SOC's own contacts.", "warn")
    if ev == NotifyEvent.PRIORITY_CHANGED:
        raised = bool(ctx.previous_priority) and Priority(ctx.previous_priority).rank > inc.priority.rank
        doc.notice(
            f"Priority {'raised' if raised else 'lowered'} from {ctx.previous_priority} to "
            f"{inc.priority.value} by {_plain(ctx.actor or 'soc-responder', 200)}: "
            f"{_plain(ctx.reason or 'no reason given', 500)}",
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
            "Contain the resources marked failed yourself now: isolate the VM's network or disable the account "
            "in your tenant, then tell the SOC."
        ] + steps
    if ev == NotifyEvent.CONTAINMENT_HELD or (held and ev in (NotifyEvent.NEW_INCIDENT, NotifyEvent.PRIORITY_CHANGED)):
        doc.notice(f"{len(held)} containment action(s) are held for approval and have NOT been executed.", "warn")
        steps = [
            "Decide on the held actions now: the SOC approves or rejects them on your instruction "
            "(POST /api/incidents/{id}/approve)."
        ] + steps
    if ev == NotifyEvent.RELEASED:
        doc.notice(f"Released by {_plain(ctx.actor or 'soc-responder', 200)}: {_plain(ctx.reason or '', 500)}", "info")
        steps = [
            "Confirm remediation is complete (credentials rotated, malware removed) and monitor the released "
            "resources closely for the next days."
        ]
    if ev == NotifyEvent.SLA_BREACHED:
        doc.notice(
            "A service commitment was missed for this incident: "
            + "; ".join(_plain(b, 200) for b in ctx.breaches)
            + ".",
            "alert",
        )
        steps = ["SOC duty manager: take over this incident now and reach the partner's contacts."]
    if ev == NotifyEvent.ESCALATION_EXHAUSTED:
        esc = ctx.escalation or {}
        doc.notice(
            f"{esc.get('attempts', '?')} call attempt(s) since {esc.get('startedAt', '?')} were not "
            f"acknowledged ({_plain(esc.get('reason') or 'limit reached', 300)}). No further calls will be "
            "placed automatically.",
            "alert",
        )
        steps = [
            "SOC duty manager: reach the partner by other means (alternate numbers, account manager) and "
            "record the acknowledgement (POST /api/incidents/{id}/ack)."
        ]
    if ev == NotifyEvent.ACKNOWLEDGED:
        doc.notice(
            f"Acknowledged by {_plain(inc.acknowledged_by or ctx.actor or 'unknown', 200)}; "
            "the phone escalation has stopped.",
            "info",
        )
    _facts(doc, ctx)
    _what_happened(doc, ctx)
    _actions(doc, ctx)
    _next(doc, [s.replace("{id}", quote(inc.id, safe="")) for s in steps])
    _links(doc, ctx)
    return RenderedMail(
        subject=_subject(inc, what), html=_render_html(doc), text=_render_text(doc), importance=importance
    )


def render_digest(incidents: list[Incident], partner_name: str, day: str, base_url: str | None) -> RenderedMail:
    """The daily P4 digest for one partner (or the SOC)."""
    doc = _Doc(
        title=f"{len(incidents)} low-priority incident(s) — {day}",
        banner=f"P4 Minor — daily digest for {partner_name}",
        colour=_COLOURS["P4"],
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
    _next(doc, list(_NEXT_STEPS[Priority.P4]) + ["Reply to the SOC to raise any of these to a higher priority."])
    subject = _plain(
        f"[P4 Minor] Daily digest {day}: {len(incidents)} low-priority incident(s) for {partner_name}", MAX_SUBJECT
    )
    return RenderedMail(subject=subject, html=_render_html(doc), text=_render_text(doc), importance="low")


def spoken_summary(incident: Incident, attempt: int) -> str:
    """What the call says before asking for the key press (plain text for text-to-speech)."""
    who = _plain(incident.partner_name or "the security operations centre", 80)
    title = _plain(incident.title, MAX_SPOKEN_TITLE)
    return (
        f"This is an automated call from the security operations centre for {who}. "
        f"A priority {incident.priority.rank}, {incident.priority.partner_severity}, security incident needs "
        f"your attention: {title}. Details were sent by email. This is call attempt {attempt}. "
        "Press 1 to acknowledge and stop further calls."
    )


SPOKEN_ACKNOWLEDGED = "Thank you. The incident is acknowledged and further calls are cancelled. Goodbye."
SPOKEN_RETRY = "Sorry, that was not a 1. Press 1 to acknowledge the incident."
SPOKEN_GOODBYE = "No acknowledgement received. We will call again. Goodbye."
