"""Issue 14: what one call to a contact says about all the incidents it announces (text to speech). Pure.

One incident: the call says what it always said (``spoken_summary``). Several: how many, by priority, then the
first ``MAX_NAMED`` — most severe first, then oldest — by title and console code, and that pressing 1
acknowledges all of them. Everything that came from an alert is made plain text first (``plain``).
"""

from __future__ import annotations

from collections import Counter

from shared.models import Incident
from shared.notify.templates import plain, short_code, spoken_summary

MAX_NAMED = 3
MAX_TITLE = 100


def announcement_order(incidents: list[Incident]) -> list[Incident]:
    """Most severe first, then oldest first (then by id, so the order is stable)."""
    return sorted(incidents, key=lambda i: (i.priority.rank, i.sla.received_at, i.id))


def spoken_page_summary(incidents: list[Incident], attempt: int = 1) -> str:
    """The spoken text of a call announcing ``incidents`` (in announcement order)."""
    if len(incidents) == 1:
        return spoken_summary(incidents[0], attempt)
    partners = list(dict.fromkeys(plain(i.partner_name or "the security operations centre", 80) for i in incidents))
    who = partners[0] if len(partners) == 1 else ", ".join(partners[:-1]) + " and " + partners[-1]
    counts = Counter(i.priority for i in incidents)
    by_priority = ", ".join(
        f"{counts[p]} priority {p.rank}, {p.partner_severity}" for p in sorted(counts, key=lambda p: p.rank)
    )
    named = []
    for n, incident in enumerate(incidents[:MAX_NAMED], start=1):
        named.append(
            f"{n}: {plain(incident.title, MAX_TITLE)}, priority {incident.priority.rank}, "
            f"incident code {' '.join(short_code(incident.id))}"
        )
    more = len(incidents) - len(named)
    return (
        f"This is an automated call from the security operations centre for {who}. "
        f"{len(incidents)} security incidents need your attention: {by_priority}. "
        f"Most severe and oldest first. {'. '.join(named)}."
        + (f" And {more} more." if more else "")
        + " Details were sent by email and are in the console. "
        f"Press 1 to acknowledge all {len(incidents)} incidents and stop calls about them."
    )


SPOKEN_ALL_ACKNOWLEDGED = "Thank you. All the incidents announced are acknowledged. Goodbye."
