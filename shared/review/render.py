"""Post-incident review rendering: Markdown and HTML from the one document model, every value escaped
for its target format (nothing a caller wrote can add markup, links or HTML)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from shared.review.model import (
    CONTROL_CHARS,
    REVIEW_DUE_BUSINESS_DAYS,
    PostIncidentReview,
    ReviewEntry,
)

# -- rendering -----------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&\"'$])")
_MD_LINE_START = re.compile(r"^([-=>])|^(\d+)([.)])")


def md_inline(value: Any) -> str:
    """A value as Markdown text on one line: every character Markdown (or HTML in it) reacts to is escaped."""
    text = CONTROL_CHARS.sub("", "" if value is None else str(value))
    text = re.sub(r"[\r\n\t]+", " ", text).strip()
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_block(value: Any) -> str:
    """Multi-line text as Markdown paragraphs: lines kept, each escaped, none able to start a block construct."""
    out = []
    for line in CONTROL_CHARS.sub("", "" if value is None else str(value)).replace("\r\n", "\n").split("\n"):
        escaped = _MD_SPECIAL.sub(r"\\\1", line.strip())
        # "-", "=", ">" and "1." open lists, headings, quotes; a backslash before the punctuation keeps them text.
        out.append(
            _MD_LINE_START.sub(lambda m: "\\" + m.group(1) if m.group(1) else m.group(2) + "\\" + m.group(3), escaped)
        )
    return "  \n".join(out)


@dataclass
class _Section:
    title: str
    kind: str  # kv | text | table | list
    rows: list[list[Any]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    text: str | None = None
    empty: str = "Nothing recorded."


def _sections(r: PostIncidentReview) -> list[_Section]:
    due_note = f"{REVIEW_DUE_BUSINESS_DAYS} business days after {r.due_basis} ({r.time_zone})"
    state = "complete" if r.complete else "incomplete — missing " + " and ".join(r.missing)
    if r.overdue:
        state += " — OVERDUE"
    chain = (
        f"intact ({r.chain.events} events)"
        if r.chain.valid
        else f"BROKEN at event {r.chain.broken_at} — see GET /api/incidents/{r.incident_id}/verify"
    )
    facts = [
        ["Incident", r.incident_id],
        ["Title", r.title],
        ["Partner", r.partner_name or r.partner_id or "none (SOC's own contacts)"],
        ["Status", r.status],
        ["Priority", f"{r.priority} {r.priority_label} (partner severity {r.partner_severity})"],
        ["First activity", r.first_activity_at],
        ["Detected", r.detected_at],
        ["Triaged", r.triaged_at or "—"],
        ["First response", r.first_response_at or "—"],
        ["Acknowledged", f"{r.acknowledged_at} by {r.acknowledged_by}" if r.acknowledged_at else "—"],
        ["Resolved", r.resolved_at or "not resolved yet"],
        ["Review due", f"{r.due_at} ({due_note})"],
        ["Review", state],
        ["Evidence chain", chain],
    ]
    sev = [["initial", r.initial_priority or "—", "", "triage"]] + [
        [c.at, f"{c.from_priority} → {c.to_priority}", c.actor, c.reason or ""] for c in r.severity_changes
    ]
    items = [
        [i + 1, a.description, a.owner or "", a.due.isoformat() if a.due else "", a.status]
        for i, a in enumerate(r.action_items)
    ]

    def events(entries: list[ReviewEntry]) -> list[list[Any]]:
        return [[e.at or "", e.actor or "", e.event_type or "", e.summary] for e in entries]

    ev_header = ["Time (UTC)", "Actor", "Event", "Summary"]
    return [
        _Section("Summary", "kv", facts),
        _Section("Severity and its changes", "table", sev, ["Time (UTC)", "Priority", "Actor", "Reason"]),
        _Section("Root cause", "text", text=r.root_cause, empty="Not recorded yet (required)."),
        _Section("Impact", "text", text=r.impact, empty="Not recorded yet."),
        _Section("Containment actions", "table", events(r.containment), ev_header),
        _Section(
            "Containment state",
            "table",
            [[e.at or "", e.summary] for e in r.containment_state],
            ["Updated (UTC)", "Action and state"],
        ),
        _Section("Eradication", "text", text=r.eradication, empty="Not recorded yet."),
        _Section("Recovery", "text", text=r.recovery, empty="Not recorded yet."),
        _Section("Recovery events", "table", events(r.recovery_events), ev_header),
        _Section("Investigation", "table", events(r.investigation), ev_header),
        _Section("Notification record", "table", events(r.notifications), ev_header),
        _Section("Customer notification", "text", text=r.customer_notification, empty="Not recorded yet."),
        _Section(
            "Action items",
            "table",
            items,
            ["#", "Action", "Owner", "Due", "Status"],
            empty="None recorded yet (required).",
        ),
        _Section(
            "SLA",
            "kv",
            [
                ["Triage due", r.sla.get("triageDue")],
                ["First response due", r.sla.get("firstResponseDue")],
                ["Response SLA due", r.sla.get("responseSlaDue")],
                ["Breaches recorded", ", ".join(r.sla.get("breaches") or []) or "none"],
            ],
        ),
        _Section(
            "Review contributions",
            "table",
            [[c.at, c.actor, c.seq, ", ".join(c.fields)] for c in r.contributions],
            ["Time (UTC)", "Actor", "Event", "Fields"],
        ),
        _Section(
            "Timeline",
            "table",
            [[e.seq, e.at, e.phase, e.criterion, e.actor, e.event_type, e.summary] for e in r.timeline],
            ["#", "Time (UTC)", "Phase", "SOC 2", "Actor", "Event", "Summary"],
        ),
    ]


def render_markdown(r: PostIncidentReview) -> str:
    """The review as Markdown (every value escaped)."""
    out = [f"# Post-incident review: {md_inline(r.title)}", ""]
    for s in _sections(r):
        out += [f"## {s.title}", ""]
        if s.kind == "text":
            out.append(md_block(s.text) if s.text else f"_{s.empty}_")
        elif s.kind == "kv":
            out += ["| Field | Value |", "|---|---|"] + [f"| {md_inline(k)} | {md_inline(v)} |" for k, v in s.rows]
        elif not s.rows:
            out.append(f"_{s.empty}_")
        else:
            out += ["| " + " | ".join(s.header) + " |", "|" + "---|" * len(s.header)]
            out += ["| " + " | ".join(md_inline(c) for c in row) + " |" for row in s.rows]
        out.append("")
    out.append(
        f"_Generated {md_inline(r.generated_at)} from the incident's evidence timeline "
        f"(SOC 2 CC7.3 evaluation, CC7.4 response, CC7.5 recovery)._"
    )
    return "\n".join(out) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#1b1b1b}table{border-collapse:collapse;"
    "margin:.5em 0 1.5em}th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}.empty{color:#666;font-style:italic}.text{white-space:pre-wrap}"
)


def render_html(r: PostIncidentReview) -> str:
    """The review as a standalone HTML page (every value escaped; no script, no external resources)."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Post-incident review {e(r.incident_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Post-incident review: {e(r.title)}</h1>",
    ]
    for s in _sections(r):
        out.append(f"<h2>{e(s.title)}</h2>")
        if s.kind == "text":
            out.append(f'<div class="text">{e(s.text)}</div>' if s.text else f'<p class="empty">{e(s.empty)}</p>')
        elif s.kind == "kv":
            out.append(
                "<table>"
                + "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in s.rows)
                + "</table>"
            )
        elif not s.rows:
            out.append(f'<p class="empty">{e(s.empty)}</p>')
        else:
            head = "".join(f"<th>{e(h)}</th>" for h in s.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{e('' if c is None else str(c))}</td>" for c in row) + "</tr>" for row in s.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append(
        f'<p class="empty">Generated {e(r.generated_at)} from the incident\'s evidence timeline '
        "(SOC 2 CC7.3 evaluation, CC7.4 response, CC7.5 recovery).</p></body></html>"
    )
    return "\n".join(out) + "\n"
