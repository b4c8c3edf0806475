"""Adaptive Cards for Teams channels (issue 16). Pure.

Version 1.5 (what Teams renders), validated in tests against Microsoft's published schema
(tests/notify/schemas/). A card tells and links; it never acts: its only buttons are ``Action.OpenUrl``
to the incident's console page and review, where every decision is taken signed in and confirmed
(no ``Action.Submit`` / ``Action.Execute``, no inputs).

Everything from an alert or a person (titles, entity names, action targets, error texts, who
acknowledged) is attacker-controlled and Teams renders Markdown in text: such text only goes into
``TextRun``s (which carry no Markdown) and is neutralised first (``inert``): link syntax broken,
square brackets made full-width (no link or image syntax), URL schemes and ``www.`` defanged so nothing is auto-linked, angle brackets replaced, control and
bidi characters dropped, length bounded. Only values the app builds itself (priority, status, times,
the partner's name from the registry, our own links) appear as Markdown-capable ``TextBlock``/``FactSet``
text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.models import Incident, Priority
from shared.notify.actions import ActionLine, ActionState
from shared.notify.document import plain, safe_link
from shared.notify.templates import console_link

CARD_VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_TITLE = 200
MAX_ITEM = 160
MAX_LINES = 10

_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20})\s*:\s*(//)?")
_WWW = re.compile(r"(?i)\bwww\.")


class CardKind(StrEnum):
    """Why a card is posted (one per notification that goes to Teams)."""

    NEW = "new"  # a new P1/P2, or one raised to P1/P2
    HELD = "held"  # containment held for approval
    FAILED = "failed"  # containment failed: people must act
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True)
class CardContext:
    incident: Incident
    kind: CardKind
    actions: list[ActionLine] = field(default_factory=list)
    console_base_url: str | None = None
    timezone: str = "UTC"
    raised_from: str | None = None  # NEW after a priority change: the priority before
    actor: str | None = None  # ACKNOWLEDGED: who
    reason: str | None = None  # FAILED after an approval run: what went wrong


def inert(value: Any, limit: int = MAX_ITEM) -> str:
    """Untrusted text as text Teams shows as it is: no link, no auto-link, no tag, bounded."""
    text = plain(value, limit * 2)
    # No ASCII square brackets: no Markdown link or image can be formed, whatever the renderer.
    text = text.replace("[", "［").replace("]", "］")
    text = _SCHEME.sub(lambda m: f"{m.group(1)}［:］" + ("//" if m.group(2) else ""), text)
    text = _WWW.sub("www［.］", text)
    text = text.replace("<", "‹").replace(">", "›")
    return plain(text, limit)


def text_run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def rich_text(*runs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **extra}


def heading(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "weight": "Bolder", "spacing": "Medium", "wrap": True}


_HEADLINE = {
    CardKind.NEW: "new incident",
    CardKind.HELD: "containment HELD for approval",
    CardKind.FAILED: "containment FAILED: act by hand",
    CardKind.ACKNOWLEDGED: "acknowledged",
}
_STYLE = {
    CardKind.NEW: None,
    CardKind.HELD: "warning",
    CardKind.FAILED: "attention",
    CardKind.ACKNOWLEDGED: "good",
}
_NEXT = {
    CardKind.NEW: "Open the incident in the console to acknowledge it or request a call.",
    CardKind.HELD: "An Approver decides in the console: it lists each held action, its target and risk, "
    "and asks to confirm.",
    CardKind.FAILED: "Containment did not complete: contain by hand, then record it in the console.",
    CardKind.ACKNOWLEDGED: "Phone escalation for this incident has stopped.",
}


def _local(moment: Any, tz: str) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def headline(ctx: CardContext) -> str:
    """The card's first line (also its fallback text and the row's summary)."""
    p = ctx.incident.priority
    what = _HEADLINE[ctx.kind]
    if ctx.kind == CardKind.NEW and ctx.raised_from and ctx.raised_from != p.value:
        what = f"raised from {ctx.raised_from}"
    return f"{p.value} {p.label} — {what}"


def review_link(base_url: str | None, incident_id: str) -> str | None:
    """The incident's post-incident review page (read-only)."""
    base = safe_link((base_url or "").rstrip("/"))
    return f"{base}/api/incidents/{quote(incident_id, safe='')}/review?format=html" if base else None


def build_card(ctx: CardContext) -> dict[str, Any]:
    """The Adaptive Card (1.5) for one notification about one incident."""
    inc = ctx.incident
    top = headline(ctx)
    header: dict[str, Any] = {
        "type": "Container",
        "items": [
            {"type": "TextBlock", "text": top, "weight": "Bolder", "size": "Large", "wrap": True},
            rich_text(text_run(inert(inc.title, MAX_TITLE), size="Medium")),
        ],
        "bleed": True,
    }
    if _STYLE[ctx.kind]:
        header["style"] = _STYLE[ctx.kind]
    facts = [
        {"title": "Priority", "value": f"{inc.priority.value} {inc.priority.label} (score {inc.score}/10)"},
        {"title": "Partner", "value": plain(inc.partner_name or inc.partner_id or "none matched: the SOC's", 80)},
        {"title": "Status", "value": inc.status.value},
        {"title": "Incident", "value": inc.id},
        {"title": "Received", "value": _local(inc.sla.received_at, ctx.timezone)},
    ]
    if ctx.kind == CardKind.ACKNOWLEDGED or inc.acknowledged_at:
        facts.append({"title": "Acknowledged", "value": _local(inc.acknowledged_at, ctx.timezone)})
    body: list[dict[str, Any]] = [header, {"type": "FactSet", "facts": facts}]
    if ctx.kind == CardKind.ACKNOWLEDGED and (ctx.actor or inc.acknowledged_by):
        body.append(
            rich_text(text_run("Acknowledged by ", weight="Bolder"), text_run(inert(ctx.actor or inc.acknowledged_by)))
        )
    body += _entities(inc)
    body += _done(ctx)
    if ctx.reason and ctx.kind == CardKind.FAILED:
        body.append(rich_text(text_run("Why: ", weight="Bolder"), text_run(inert(ctx.reason, 400))))
    body.append({"type": "TextBlock", "text": _NEXT[ctx.kind], "wrap": True, "isSubtle": True, "spacing": "Medium"})
    card: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": plain(f"{top}: {inert(inc.title, MAX_TITLE)} ({inc.id})", 400),
        "body": body,
    }
    buttons = []
    console = console_link(ctx.console_base_url, inc.id)
    if console:
        buttons.append({"type": "Action.OpenUrl", "title": "Open in the console", "url": console, "style": "positive"})
    review = review_link(ctx.console_base_url, inc.id)
    if review:
        buttons.append({"type": "Action.OpenUrl", "title": "Post-incident review", "url": review})
    if buttons:
        card["actions"] = buttons
    return card


def _entities(inc: Incident) -> list[dict[str, Any]]:
    if not inc.entities:
        return []
    out: list[dict[str, Any]] = [heading(f"Entities ({len(inc.entities)})")]
    for e in inc.entities[:MAX_LINES]:
        out.append(
            rich_text(text_run(f"{inert(e.kind, 40)}: ", weight="Bolder"), text_run(inert(e.display)), spacing="None")
        )
    if len(inc.entities) > MAX_LINES:
        out.append({"type": "TextBlock", "text": f"and {len(inc.entities) - MAX_LINES} more", "isSubtle": True})
    return out


def _done(ctx: CardContext) -> list[dict[str, Any]]:
    if not ctx.actions:
        what = (
            "No containment for this incident (only P1 incidents are contained automatically)."
            if ctx.incident.priority != Priority.P1
            else "No containment action recorded yet."
        )
        return [heading("What was done"), {"type": "TextBlock", "text": what, "wrap": True}]
    out: list[dict[str, Any]] = [heading("What was done")]
    for a in ctx.actions[:MAX_LINES]:
        colour = (
            "Attention"
            if a.state == ActionState.FAILED
            else "Warning"
            if a.state in (ActionState.HELD, ActionState.PENDING)
            else "Default"
        )
        runs = [
            text_run(f"{a.state.value.upper()}: ", weight="Bolder", color=colour),
            text_run(f"{inert(a.kind, 40)} "),
            text_run(inert(a.target)),
        ]
        if a.detail:
            runs.append(text_run(f" — {inert(a.detail, 200)}", isSubtle=True))
        out.append(rich_text(*runs, spacing="None"))
    if len(ctx.actions) > MAX_LINES:
        out.append({"type": "TextBlock", "text": f"and {len(ctx.actions) - MAX_LINES} more", "isSubtle": True})
    return out
