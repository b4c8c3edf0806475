"""Issue 14 in Teams: the storm-summary Adaptive Card (1.5) — one partner's folded cards of the last interval. Pure.

The card a channel gets instead of one card per incident while the partner is in a storm: counts by
priority, the top rules and hosts, every P1 with its containment result (as text), and a few links (the
console queue filtered to the partner, its P1s, the first P1s' console pages). Built like the other cards
(``shared.notify.teams_cards``): alert text only in ``TextRun``s, neutralised by ``inert``; our own values
in ``TextBlock``/``FactSet``; ``Action.OpenUrl`` only. Bounded: a Teams webhook message is at most about
28 KB, so the card lists at most ``MAX_P1`` P1s (fewer when their text is long) and points to the console for the rest (each incident's
own timeline records that this summary carried it either way).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from shared.models import Priority
from shared.notify.actions import ActionLine
from shared.notify.document import plain, safe_link
from shared.notify.storm_mail import SummaryLine, most_urgent, priority_rank
from shared.notify.teams_cards import CARD_VERSION, SCHEMA, heading, inert, rich_text, text_run
from shared.notify.templates import console_link

TOP = 5
MAX_P1 = 20
P1_BYTES = 20_000  # the body up to and with the P1 list: the card stays under a Teams message's ~28 KB
MAX_BUTTONS = 4
_EVENTS = {"new": "new incident", "held": "containment held", "failed": "containment failed", "acknowledged": "ack"}


@dataclass(frozen=True)
class StormCard:
    """What one summary card says (``lines``: one per folded card, oldest first)."""

    partner_name: str
    partner_id: str | None
    number: int
    lines: list[SummaryLine]
    since: str | None
    every_minutes: int
    containment: Mapping[str, list[ActionLine]] = field(default_factory=dict)
    console_base_url: str | None = None


def queue_link(base_url: str | None, partner_id: str | None, priority: str | None = None) -> str | None:
    """The console queue filtered to the partner (and a priority): a page, opening it never acts."""
    base = safe_link((base_url or "").rstrip("/"))
    if not base:
        return None
    query = {k: v for k, v in (("partner", partner_id), ("priority", priority)) if v}
    return f"{base}/api/console" + (f"?{urlencode(query, quote_via=quote)}" if query else "")


def storm_headline(c: StormCard) -> str:
    """The card's first line (its fallback text, the rows' summary)."""
    incidents = len({line.incident_id for line in c.lines})
    return f"{most_urgent(c.lines)} storm — summary {c.number}: {incidents} incident(s) for {plain(c.partner_name, 80)}"


def build_storm_card(c: StormCard) -> dict[str, Any]:
    """The Adaptive Card of one storm summary."""
    first = {line.incident_id: line for line in reversed(c.lines)}  # each incident's first folded card
    incidents = sorted(first.values(), key=lambda line: (priority_rank(line.priority), line.incident_id))
    by_priority = Counter(line.priority for line in incidents)
    p1 = [line for line in incidents if line.priority == Priority.P1.value]
    top = storm_headline(c)
    facts = [
        {"title": "Partner", "value": plain(c.partner_name, 80)},
        {"title": "Storm since", "value": plain(c.since or "?", 40)},
        {"title": "Cards gathered", "value": str(len(c.lines))},
        *[{"title": p.value, "value": str(by_priority[p.value])} for p in Priority if by_priority[p.value]],
    ]
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": "attention" if p1 else "warning",
            "bleed": True,
            "items": [
                {"type": "TextBlock", "text": top, "weight": "Bolder", "size": "Large", "wrap": True},
                {
                    "type": "TextBlock",
                    "text": f"This channel gets one summary every {c.every_minutes} min while the storm lasts "
                    "instead of one card per incident; the first P1 of each window still comes at once.",
                    "wrap": True,
                },
            ],
        },
        {"type": "FactSet", "facts": facts},
    ]
    events = Counter(_EVENTS.get(line.event, line.event) for line in c.lines)
    body.append(heading("Cards gathered"))
    body.append(rich_text(*[text_run(f"{inert(e, 40)}: {n}  ") for e, n in events.most_common()]))
    for title, counts in (
        ("Top rules", Counter(r for line in incidents for r in dict.fromkeys(line.rules))),
        ("Top hosts", Counter(h for line in incidents for h in dict.fromkeys(line.hosts))),
    ):
        body.append(heading(title))
        if not counts:
            body.append({"type": "TextBlock", "text": "none recorded", "isSubtle": True, "spacing": "None"})
        for name, n in counts.most_common(TOP):
            body.append(
                rich_text(text_run(inert(name, 80)), text_run(f" — {n} incident(s)", isSubtle=True), spacing="None")
            )
    if p1:
        body.append(heading(f"Every P1 and its containment ({len(p1)})"))
        used, shown = len(json.dumps(body)), 0
        for line in p1[:MAX_P1]:
            blocks = _p1_blocks(line, c.containment.get(line.incident_id) or [])
            size = len(json.dumps(blocks))
            if used + size > P1_BYTES:
                break
            body += blocks
            used, shown = used + size, shown + 1
        if len(p1) > shown:
            body.append({"type": "TextBlock", "text": f"and {len(p1) - shown} more P1 (see the console)"})
    body.append(
        {
            "type": "TextBlock",
            "text": "Acknowledge P1s in the console (or press 1 on our call); each incident's timeline records "
            "this summary.",
            "wrap": True,
            "isSubtle": True,
            "spacing": "Medium",
        }
    )
    card: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": plain(top, 400),
        "body": body,
    }
    buttons: list[dict[str, Any]] = []
    queue = queue_link(c.console_base_url, c.partner_id)
    if queue:
        buttons.append(
            {"type": "Action.OpenUrl", "title": "Open the partner's queue", "url": queue, "style": "positive"}
        )
    p1_queue = queue_link(c.console_base_url, c.partner_id, Priority.P1.value) if p1 else None
    if p1_queue:
        buttons.append({"type": "Action.OpenUrl", "title": "Its P1 incidents", "url": p1_queue})
    for line in p1:
        link = console_link(c.console_base_url, line.incident_id)
        if link is None or len(buttons) >= MAX_BUTTONS:
            break
        buttons.append({"type": "Action.OpenUrl", "title": f"P1 {line.incident_id[-6:].upper()}", "url": link})
    if buttons:
        card["actions"] = buttons
    return card


def _p1_blocks(line: SummaryLine, actions: list[ActionLine]) -> list[dict[str, Any]]:
    """One P1: its id and title, then each containment action and its result (text only)."""
    out = [rich_text(text_run(f"{line.incident_id}: ", weight="Bolder"), text_run(inert(line.title, 120)))]
    if not actions:
        out.append(rich_text(text_run("no containment action recorded yet", isSubtle=True), spacing="None"))
    for a in actions[:3]:
        runs = [text_run(f"{a.state.value.upper()}: ", weight="Bolder"), text_run(f"{inert(a.kind, 40)} ")]
        runs.append(text_run(inert(a.target, 80)))
        if a.detail:
            runs.append(text_run(f" — {inert(a.detail, 120)}", isSubtle=True))
        out.append(rich_text(*runs, spacing="None"))
    if len(actions) > 3:
        out.append(rich_text(text_run(f"and {len(actions) - 3} more action(s)", isSubtle=True), spacing="None"))
    return out
