"""The consolidated Sentinel comment: what soc-responder decided and did, in one place. Pure.

One comment per Sentinel incident, with a deterministic id, updated in place
as the response progresses (an incident that gathers 150 alerts still has one
soc-responder comment, not 150). It says:

- the priority and why (score, the scoring rules that fired);
- the alerts it gathered (count, the latest few);
- each containment action and its result;
- who was notified and when (emails, call attempts; phone numbers masked);
- who acknowledged, and a link to the evidence (``GET {CALLBACK_BASE_URL}/api/incidents/{id}``).

Sentinel renders HTML in comments; every value is HTML-escaped (alert titles
and entity names come from attackers' reach). The text is a function of the
incident's state only — no clock — so an unchanged incident renders an
unchanged comment and nothing is rewritten. Sentinel's limit is 30,000
characters per comment: lists are shortened step by step until the comment
fits, and the evidence link always survives.
"""

from __future__ import annotations

import hashlib
import html
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.models import Incident, isoformat

MAX_COMMENT_CHARS = 30_000
MAX_COMMENTS_PER_INCIDENT = 100
_NAMESPACE = uuid.UUID("5b7f3c8e-2a41-4f0e-9d61-6c0a4e7b9f12")

# (rules, alerts, actions, notifications, characters per item): tried in order until the comment fits.
_LEVELS = ((50, 10, 200, 200, 600), (25, 5, 60, 60, 300), (12, 3, 25, 25, 200), (6, 1, 10, 10, 120), (3, 0, 5, 5, 80))


def comment_id(incident_id: str, sentinel_incident_id: str) -> str:
    """The soc-responder comment's id on a Sentinel incident (a GUID, the same on every run)."""
    return str(uuid.uuid5(_NAMESPACE, f"{incident_id}|{sentinel_incident_id.lower()}"))


def fingerprint(message: str) -> str:
    return hashlib.sha256(message.encode("utf-8")).hexdigest()


@dataclass
class CommentView:
    """Everything the comment shows."""

    incident: Incident
    actions: Sequence[Mapping[str, Any]] = field(default_factory=list)  # containment action summaries
    notifications: Sequence[Mapping[str, Any]] = field(default_factory=list)  # Notifications rows
    evidence_url: str | None = None
    response_mode: str | None = None
    console_url: str | None = None  # issue 16: the incident's console page


def _e(value: Any, limit: int) -> str:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[: max(1, limit - 1)] + "…"
    return html.escape(text, quote=True)


def _items(lines: list[str], cap: int, more: str) -> str:
    shown = lines[:cap] if cap else []
    hidden = len(lines) - len(shown)
    body = "".join(f"<li>{line}</li>" for line in shown)
    if hidden:
        body += f"<li><i>… {hidden} more {more}: see the evidence link</i></li>"
    return f"<ul>{body}</ul>" if body else ""


def _mask(number: Any) -> str:
    from shared.masking import mask_phone

    return mask_phone(str(number or ""))


def notification_lines(rows: Iterable[Mapping[str, Any]], limit: int) -> list[str]:
    """Who was notified and when, oldest first (emails, the P4 digest, call attempts; other rows are bookkeeping)."""
    out: list[tuple[str, str]] = []
    for r in rows:
        channel = r.get("channel")
        if channel == "email":
            when = r.get("sentAt") or r.get("updatedAt") or r.get("createdAt") or ""
            recipients = [str(x) for x in (r.get("recipients") or []) if x]
            who = ", ".join(recipients[:6]) + (f" and {len(recipients) - 6} more" if len(recipients) > 6 else "")
            text = (
                f"{_e(when, 40)} — email “{_e(r.get('kind'), 60)}” to {_e(who or 'nobody', limit)}: "
                f"<b>{_e(r.get('status'), 30)}</b>"
            )
            if r.get("status") in ("failed", "skipped") and r.get("error"):
                error = r["error"] if isinstance(r["error"], str) else (r["error"] or {}).get("reason", "")
                text += f" ({_e(error, limit)})"
        elif channel == "call":
            when = r.get("placedAt") or r.get("createdAt") or ""
            who = f"{r.get('contactName') or 'contact'} ({_mask(r.get('recipient') or r.get('target'))})"
            text = (
                f"{_e(when, 40)} — call attempt {_e(r.get('attempt'), 6)} to {_e(who, limit)}: "
                f"<b>{_e(r.get('status'), 30)}</b>"
            )
        elif channel == "digest":
            when = r.get("updatedAt") or r.get("createdAt") or ""
            text = f"{_e(when, 40)} — P4 email for the daily digest: <b>{_e(r.get('status'), 30)}</b>"
        else:
            continue
        out.append((str(when), text))
    return [text for _, text in sorted(out, key=lambda x: x[0])]


def _render(view: CommentView, caps: tuple[int, int, int, int, int]) -> str:
    rule_cap, alert_cap, action_cap, note_cap, chars = caps
    inc = view.incident
    parts = [
        f"<p><b>soc-responder</b> · incident <b>{_e(inc.id, 80)}</b> · "
        f"<b>{inc.priority.value} {inc.priority.label}</b> (score {inc.score}/10) · status "
        f"<b>{_e(inc.status.value, 30)}</b>"
        + (f" · response mode {_e(view.response_mode, 20)}" if view.response_mode else "")
        + "</p>"
    ]
    triage = inc.triage
    rules = [
        f"{_e(h.rule_id, 80)}: {_e(h.description, chars)} ({_e(h.effect, 80)} → {h.score_after})"
        for h in triage.rules_fired
    ]
    parts.append(
        f"<p><b>Why {inc.priority.value}</b> — scoring rules {_e(triage.rules_version, 40)}:</p>"
        + _items(rules, rule_cap, "rules")
    )
    alerts = [
        f"{_e(a.source, 30)} · {_e(a.severity or '—', 20)} · {_e(a.title, chars)} ({isoformat(a.observed_at)})"
        for a in sorted(inc.alerts, key=lambda a: a.received_at, reverse=True)
    ]
    parts.append(
        f"<p><b>Alerts</b>: {inc.alert_count} in this incident"
        + (", latest first:" if alert_cap and alerts else ".")
        + "</p>"
        + _items(alerts, alert_cap, "alerts")
    )
    actions = [
        f"{_e(a.get('result') or a.get('targetDisplay') or a.get('target'), chars)} "
        f"[<b>{_e(a.get('status') or 'pending', 30)}</b>]"
        for a in view.actions
    ]
    if actions:
        parts.append("<p><b>Containment</b>, each action and its result:</p>" + _items(actions, action_cap, "actions"))
    else:
        parts.append(
            "<p><b>Containment</b>: none "
            + ("(no containable entity)" if inc.priority.value == "P1" else "(P1 only)")
            + ".</p>"
        )
    notes = notification_lines(view.notifications, chars)
    parts.append(
        "<p><b>Notified</b>:</p>" + _items(notes, note_cap, "notifications")
        if notes
        else "<p><b>Notified</b>: nobody yet.</p>"
    )
    if inc.acknowledged_at:
        parts.append(
            f"<p><b>Acknowledged</b> by {_e(inc.acknowledged_by or 'an analyst', 320)} at "
            f"{isoformat(inc.acknowledged_at)}.</p>"
        )
    parts.append(_evidence(view))
    parts.append("<p><i>Maintained by soc-responder and updated in place as the response progresses.</i></p>")
    return "".join(parts)


def _evidence(view: CommentView) -> str:
    if view.console_url:  # issue 16
        url = html.escape(view.console_url, quote=True)
        console = f'<p><b>Console</b> (acknowledge, approve, release): <a href="{url}">{url}</a></p>'
        return console + _evidence(replace(view, console_url=None))
    if view.evidence_url:
        url = html.escape(view.evidence_url, quote=True)
        return f'<p><b>Evidence</b> (tamper-evident timeline): <a href="{url}">{url}</a></p>'
    return (
        f"<p><b>Evidence</b>: GET /api/incidents/{_e(view.incident.id, 80)} on soc-responder "
        "(CALLBACK_BASE_URL is not set).</p>"
    )


def render_comment(view: CommentView, limit: int = MAX_COMMENT_CHARS) -> str:
    """The comment's HTML, always at most ``limit`` characters (lists shortened, the evidence link kept)."""
    for caps in _LEVELS:
        text = _render(view, caps)
        if len(text) <= limit:
            return text
    inc = view.incident
    text = (
        f"<p><b>soc-responder</b> · incident <b>{_e(inc.id, 80)}</b> · <b>{inc.priority.value}</b> · status "
        f"<b>{_e(inc.status.value, 30)}</b> · {len(view.actions)} containment action(s), "
        f"{len(view.notifications)} notification record(s): too many to list here.</p>" + _evidence(view)
    )
    return text[:limit]


def console_url(base_url: str | None, incident_id: str) -> str | None:
    """issue 16: ``{CONSOLE_BASE_URL}/api/console/incidents/{id}``, or None without a safe base URL."""
    from shared.notify.templates import console_link

    return console_link(base_url, incident_id)


def evidence_url(base_url: str | None, incident_id: str) -> str | None:
    """``{CALLBACK_BASE_URL}/api/incidents/{id}``, or None when no safe base URL is configured."""
    from shared.notify.templates import evidence_links

    links = evidence_links(base_url, incident_id)
    return links[0][1] if links else None
