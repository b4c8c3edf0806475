"""Post-incident review workflow: build on demand, record analyst submissions, flag overdue reviews
(the daily ``review_overdue_watch``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from shared.evidence import ChainVerdict, EventDraft, EvidenceEvent, now_ms
from shared.models import ActorType, Incident, Phase, isoformat
from shared.notify.incidents import load_incident
from shared.partners import PartnerRegistry
from shared.review.model import (
    OVERDUE,
    SUBMITTED,
    WATCH_LOOKBACK,
    WATCH_PARTITION,
    PostIncidentReview,
    ReviewSubmission,
    build_review,
)
from shared.store import EvidenceStore

log = logging.getLogger("soc_responder.review")


# -- the service ----------------------------------------------------------------------------------
@dataclass
class OverdueWatchReport:
    checked: int = 0
    flagged: list[str] = field(default_factory=list)
    complete: int = 0
    not_due: int = 0
    errors: list[str] = field(default_factory=list)


class ReviewService:
    """Builds reviews, records analyst submissions, flags overdue reviews."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        clock: Callable[[], datetime] = now_ms,
        integrity: Callable[[str, list[EvidenceEvent]], ChainVerdict] | None = None,
    ):
        self.store, self.partners, self.clock = store, partners, clock
        # The same check as GET /verify: chain, stored head and the latest anchor (wired by shared/runtime.py).
        self.integrity = integrity

    def _tz(self, incident: Incident) -> str:
        partner = self.partners.get(incident.partner_id)
        return partner.timezone if partner else self.partners.soc.timezone

    def _build(self, incident: Incident, events: list[EvidenceEvent]) -> PostIncidentReview:
        records = self.store.list_records("ContainmentActions", incident.id)
        verdict = self.integrity(incident.id, events) if self.integrity else None
        return build_review(incident, events, records, self._tz(incident), self.clock(), verdict)

    def review(self, incident_id: str) -> PostIncidentReview:
        """The current review of an incident (IncidentNotFoundError if unknown)."""
        incident = load_incident(self.store, incident_id)
        return self._build(incident, self.store.list_events(incident_id))

    def submit(self, incident_id: str, submission: ReviewSubmission) -> tuple[PostIncidentReview, EvidenceEvent]:
        """Record an analyst's review fields as an evidence event; returns the updated review and the event."""
        load_incident(self.store, incident_id)
        fields = submission.fields()
        names = ", ".join(fields)
        [event] = self.store.append_events(
            incident_id,
            [
                EventDraft(
                    event_type=SUBMITTED,
                    phase=Phase.REVIEW,
                    occurred_at=self.clock(),
                    actor=submission.actor,
                    actor_type=ActorType.ANALYST,
                    summary=f"Post-incident review updated by {submission.actor[:256]}: {names}",
                    data={"fields": fields},
                )
            ],
        )
        review = self.review(incident_id)
        if review.complete:
            self._settle(incident_id, "complete")
        return review, event

    def _settle(self, incident_id: str, state: str) -> None:
        self.store.put_record(
            "IngestState", WATCH_PARTITION, incident_id, {"state": state, "updatedAt": isoformat(self.clock())}
        )

    def flag_overdue(self) -> OverdueWatchReport:
        """Flag, once, every review past its due date and still incomplete (daily timer)."""
        report = OverdueWatchReport()
        since = isoformat(self.clock() - WATCH_LOOKBACK)
        for row in self.store.iter_incident_index(touched_since=since):
            report.checked += 1
            try:
                marker = self.store.get_record("IngestState", WATCH_PARTITION, row.incident_id)
                if marker and marker[0].get("state") in ("complete", "flagged"):
                    continue
                review = self.review(row.incident_id)
                if review.complete:
                    report.complete += 1
                    self._settle(row.incident_id, "complete")
                elif not review.overdue:
                    report.not_due += 1
                else:
                    # The timer is a singleton: checking the timeline first is enough to flag once, also
                    # after a run that stopped between the event and the marker.
                    if review.overdue_flagged_at is None:
                        self.store.append_events(
                            row.incident_id,
                            [
                                EventDraft(
                                    event_type=OVERDUE,
                                    phase=Phase.REVIEW,
                                    occurred_at=self.clock(),
                                    summary=(
                                        f"Post-incident review overdue: due {review.due_at}, missing "
                                        + " and ".join(review.missing)
                                    ),
                                    data={
                                        "dueAt": review.due_at,
                                        "dueBasis": review.due_basis,
                                        "missing": review.missing,
                                    },
                                )
                            ],
                        )
                        report.flagged.append(row.incident_id)
                    self._settle(row.incident_id, "flagged")
            except Exception as exc:
                log.warning("review watch: %s failed: %s", row.incident_id, exc)
                report.errors.append(f"{row.incident_id}: {type(exc).__name__}")
        return report
