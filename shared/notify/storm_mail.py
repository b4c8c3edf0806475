"""Issue 14: the storm summary email (pure) — one partner's folded notifications of the last few minutes.

Built as a ``Doc`` like every other message (``shared.notify.document``): every value that came from an
alert (titles, rule ids, host names, action targets) is escaped when rendered; links are built only from
``CONSOLE_BASE_URL`` / ``CALLBACK_BASE_URL`` with quoted path segments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.models import Priority
from shared.notify.actions import ActionLine
from shared.notify.document import MAX_SUBJECT, PRIORITY_COLOURS, Doc, plain, render_html, render_text, safe_link
from shared.notify.storm import FoldedItem
from shared.notify.templates import RenderedMail, console_link, evidence_links

# Past this many incidents the email lists the first ones and points to the console queue (each incident's
# own timeline records that this summary carried it either way).
MAX_LISTED = 200
TOP = 10


@dataclass(frozen=True)
class SummaryLine:
    """One folded notification: the incident it is about and why it was to be sent."""

    incident_id: str
    priority: str
    title: str
    event: str
    rules: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def summary_lines(items: Iterable[FoldedItem]) -> tuple[list[SummaryLine], list[str]]:
    """The summary's lines for the folded items, and the P1 incidents among them (each once, in order)."""
    lines = [
        SummaryLine(
            incident_id=i.incident_id or "",
            priority=i.priority or Priority.P4.value,
            title=i.title or "",
            event=i.kind or "",
            rules=list(i.rules),
            hosts=list(i.hosts),
        )
        for i in items
    ]
    return lines, list(dict.fromkeys(line.incident_id for line in lines if line.priority == Priority.P1.value))


@dataclass
class StormSummary:
    partner_name: str
    number: int
    lines: list[SummaryLine]
    since: str | None
    threshold: int
    window_minutes: int
    every_minutes: int
    containment: Mapping[str, list[ActionLine]] = field(default_factory=dict)
    """Every P1 incident's containment actions and their results, by incident id."""
    base_url: str | None = None
    console_base_url: str | None = None


def priority_rank(priority: str) -> int:
    """A line's priority as a sort key (1 = P1); anything unknown sorts last."""
    try:
        return Priority(priority).rank
    except ValueError:
        return 5


def most_urgent(lines: list[SummaryLine]) -> str:
    """The most urgent priority the summary carries (its colour, importance and place in the mail queue)."""
    return min((line.priority for line in lines), key=priority_rank, default=Priority.P4.value)


def render_storm_summary(s: StormSummary) -> RenderedMail:
    """The summary email of ``s``."""
    lines = sorted(s.lines, key=lambda line: (priority_rank(line.priority), line.incident_id))
    incidents = list(dict.fromkeys(line.incident_id for line in lines))
    top = most_urgent(lines)
    by_priority = Counter(line.priority for line in {line.incident_id: line for line in lines}.values())
    p1 = [i for i in incidents if any(line.priority == "P1" and line.incident_id == i for line in lines)]
    doc = Doc(
        title=f"Storm summary {s.number}: {len(lines)} notification(s) about {len(incidents)} incident(s)",
        banner=f"{top} — storm summary for {plain(s.partner_name, 120)}",
        colour=PRIORITY_COLOURS.get(top, PRIORITY_COLOURS["P4"]),
    )
    doc.notice(
        f"More than {s.threshold} notifications within {s.window_minutes} minutes (storm since {s.since or '?'}): "
        f"further notifications are gathered here every {s.every_minutes} minutes instead of one email each. "
        "The first P1 email of each window still goes out at once, and every incident below records this "
        "summary on its own timeline.",
        "alert" if p1 else "warn",
    )
    doc.h("Counts by priority")
    doc.kv([(p.value, str(by_priority[p.value])) for p in Priority if by_priority[p.value]])
    doc.h("Notifications gathered")
    doc.bullets([f"{event}: {n}" for event, n in Counter(line.event for line in lines).most_common()])
    rules = Counter(r for i in {line.incident_id: line for line in lines}.values() for r in dict.fromkeys(i.rules))
    doc.h("Top rules")
    doc.bullets([f"{rule}: {n} incident(s)" for rule, n in rules.most_common(TOP)] or ["none recorded"])
    hosts = Counter(h for i in {line.incident_id: line for line in lines}.values() for h in dict.fromkeys(i.hosts))
    doc.h("Top hosts")
    doc.bullets([f"{host}: {n} incident(s)" for host, n in hosts.most_common(TOP)] or ["none recorded"])
    if p1:
        doc.h("Every P1 and its containment result")
        rows = []
        for iid in p1:
            actions = s.containment.get(iid) or []
            title = next(line.title for line in lines if line.incident_id == iid)
            if not actions:
                rows.append([iid, title, "—", "—", "no containment action (see the incident)"])
            for a in actions:
                rows.append([iid, title, a.kind, a.target, a.state.value + (f" ({a.detail})" if a.detail else "")])
        doc.table(["Incident", "Title", "Action", "Target", "Result"], rows)
    doc.h("Incidents")
    listed = incidents[:MAX_LISTED]
    first = {line.incident_id: line for line in reversed(lines)}
    events: dict[str, list[str]] = {}
    for line in lines:
        events.setdefault(line.incident_id, []).append(line.event)
    doc.table(
        ["Priority", "Incident", "Title", "Notifications", "Hosts"],
        [
            [first[i].priority, i, first[i].title, ", ".join(dict.fromkeys(events[i])), ", ".join(first[i].hosts)]
            for i in listed
        ],
    )
    links: list[tuple[str, str]] = []
    for iid in listed:
        console = console_link(s.console_base_url, iid)
        if console:
            links.append((f"{first[iid].priority} {iid}: {plain(first[iid].title, 80)} — console", console))
        review = [url for label, url in evidence_links(s.base_url, iid) if label == "Post-incident review"]
        if review and first[iid].priority in ("P1", "P2"):
            links.append((f"{iid}: post-incident review", review[0]))
    if links:
        doc.h("Open in the console")
        doc.links(links)
    if len(incidents) > MAX_LISTED:
        queue = safe_link(f"{(s.console_base_url or '').rstrip('/')}/api/console")
        doc.p(
            f"{len(incidents) - MAX_LISTED} more incident(s) are in this summary; each one's timeline records it. "
            + (f"The console queue lists them all: {queue}" if queue else "")
        )
    doc.h("What you should do next")
    doc.bullets(
        [
            "Acknowledge the P1 incidents (press 1 on our call, or in the console) so the phone escalation stops.",
            "Decide held containment in bulk with the SOC (POST /api/approvals) rather than one by one.",
            "The next summary follows in a few minutes while the storm lasts; single emails resume after it.",
        ]
    )
    subject = plain(
        f"[{top} storm] Summary {s.number}: {len(incidents)} incident(s) for {s.partner_name}"
        + (f", {len(p1)} P1" if p1 else ""),
        MAX_SUBJECT,
    )
    importance = "high" if top in ("P1", "P2") else "normal"
    return RenderedMail(subject=subject, html=render_html(doc), text=render_text(doc), importance=importance)
