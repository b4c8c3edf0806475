"""Detect and Triage (docs/spec/lifecycle.md, docs/spec/ingest.md, docs/spec/triage.md): from a normalised alert to a recorded incident.

De-duplication and grouping rely only on conditional writes in the evidence
store (no in-process locks), so any number of instances may ingest the same
alert at once: exactly one of them creates the incident and asks for the
runbook to start.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from shared import source_lifecycle as lifecycle
from shared.errors import ConflictError
from shared.etag import update_under_etag
from shared.evidence import EventDraft, now_ms
from shared.ingest.closing import (
    close_at_source,
)
from shared.ingest.limits import (
    ensure_recordable,
)
from shared.ingest.placement import index_entities, place_by_entities
from shared.ingest.records import (
    SOC_PARTITION,
    IngestOutcome,
    SourceUpdateHandler,
    alert_evidence,
    alert_keys_of,
    is_stale,
    merge_alert,
    open_incident,
    triage_summary,
    versioned,
)
from shared.models import (
    Alert,
    Incident,
    Phase,
    RunbookStart,
    TriageDecision,
    incident_id_for,
    runbook_instance_id,
)
from shared.partners import Partner, PartnerRegistry
from shared.scoring import ScoringRules, score_alert
from shared.settings import Settings
from shared.source_judgement import SourceJudgement, judge
from shared.sources import alert_refs
from shared.store import AlertClaim, ChainHead, ConcurrencyError, EntityRows, EvidenceStore
from shared.suppressions import Suppression


class IngestService:
    """Turns alerts into incidents in the evidence store."""

    def __init__(
        self,
        store: EvidenceStore,
        rules: ScoringRules,
        partners: PartnerRegistry,
        settings: Settings,
        clock: Callable[[], datetime] = now_ms,
        source_updates: SourceUpdateHandler | None = None,
        suppressions: Callable[[str | None, Alert], Suppression | None] | None = None,
    ):
        self.store, self.rules, self.partners, self.settings, self.clock = store, rules, partners, settings, clock
        # Sentinel incident updates (objectEventType "Update") of a known incident: shared.sentinel_updates,
        # wired by shared.runtime (it sits above ingest: it reprioritises and reads the write-back's state).
        self.source_updates = source_updates
        # issue 14: the partner's maintenance window covering an alert (shared/suppressions.py), wired by runtime.
        self.suppressions = suppressions

    def _tz(self, partner: Partner | None) -> str:
        return partner.timezone if partner else self.partners.soc.timezone

    def ingest(self, alert: Alert) -> IngestOutcome:
        """Record one alert: a new incident, a join to a related one, or a recognised duplicate."""
        received = self.clock()
        partner, matched_by = self.partners.resolve(alert)
        decision = score_alert(alert, self.rules, partner)
        ensure_recordable(alert, decision, received)  # issue 12: before any claim, so a refusal leaves nothing
        primary = alert.primary_key
        # Issue 14 (round trips): whether an alert is known is answered by its conditional claim below, so the
        # alert index is read first only for an alert with several keys (a Sentinel incident names the alerts
        # inside it): that another copy of one of those is recorded already can only be read, not claimed.
        claims = self.store.get_alert_claims(alert.dedupe_keys) if len(alert.dedupe_keys) > 1 else {}
        if primary in claims:
            return self._known(claims[primary], alert, decision, partner, received, matched_by)
        judgement = judge(alert)
        if self.suppressions is not None and not judgement.starts_nothing and not claims:
            window = self.suppressions(partner.id if partner else None, alert)
            if window is not None:  # a maintenance window: recorded on its own incident, starts nothing
                judgement = dataclasses.replace(judgement, suppressed_by=window.wire())
        if judgement.starts_nothing and not claims:
            # Closed at the source, or a test: recorded on its own incident, never grouped into live work.
            new_id = incident_id_for(primary, alert.observed_at)
            claim, won = self.store.try_claim_alert(primary, new_id, received)
            if not won:  # a known alert (e.g. closed at the source later), or a concurrent copy of this one
                return self._known(claim, alert, decision, partner, received, matched_by)
            return self._create(new_id, alert, decision, partner, matched_by, received, judgement=judgement)
        if claims:  # another copy of the same underlying alert (e.g. Defender alert inside a Sentinel incident)
            target = next(claims[k].incident_id for k in alert.dedupe_keys if k in claims)
            joined = self._join(
                target, alert, decision, partner, received, reason="same underlying alert", matched_by=matched_by
            )
            if joined is None:
                # The other copy's incident is not written yet: failing lets the sender retry, and the retry
                # finds this alert's claim and finishes the work (as after any delivery that stopped part-way).
                raise ConcurrencyError(f"incident {target} is not written yet")
            return joined
        new_id = incident_id_for(primary, alert.observed_at)
        # Issue 14: the entity claim decides which of concurrent first alerts opens the entity's incident.
        read: dict[str, tuple[Incident, str] | None] = {}
        placed, known = place_by_entities(
            self.store,
            timedelta(minutes=self.settings.grouping_window_minutes),
            alert,
            partner.id if partner else SOC_PARTITION,
            new_id,
            received,
            read,
            looked_up=len(alert.dedupe_keys) > 1,
        )
        if known is not None:  # a redelivery whose entities' claims are over: it moves none of them
            return self._known(known, alert, decision, partner, received, matched_by)
        if placed.join is not None:
            current = read.get(placed.join)
            if placed.by_claim and current is None:  # its delivery may still be writing it
                current = self._await_incident(placed.join, attempts=60, pause=0.1)
            outcome = self._join(
                placed.join,
                alert,
                decision,
                partner,
                received,
                reason="shared entity",
                current=current,
                rows=placed.rows,
                matched_by=matched_by,
            )
            if outcome is not None:
                return outcome
        claim, won = self.store.try_claim_alert(primary, new_id, received)
        if not won:  # a redelivery, or a concurrent copy of this alert
            return self._known(claim, alert, decision, partner, received, matched_by)
        return self._create(new_id, alert, decision, partner, matched_by, received, indexed=placed.indexed)

    def _known(
        self,
        claim: AlertClaim,
        alert: Alert,
        decision: TriageDecision,
        partner: Partner | None,
        received: datetime,
        matched_by: str,
        got: tuple[Incident, str] | None = None,
    ) -> IngestOutcome:
        """A delivery of an alert already claimed (``claim``): an update or close from the source, a duplicate,
        or the completion of a delivery that stopped part-way."""
        got = got or self.store.get_incident(claim.incident_id)
        if got is not None:
            if self.source_updates is not None and (alert.source_event or "").lower() == "update":
                handled = self.source_updates(got[0], alert, received)
                if handled is not None:
                    return handled
            closed = judge(alert).closed_reason
            if closed and got[0].status.is_open:
                # The source closed it later (e.g. Defender Dismissed / Resolved re-sent): ours closes too —
                # unless the incident holds other alerts, which one dismissal does not answer.
                # (a Defender alert inside a Sentinel incident is one of its keys, not its alert: record only)
                if got[0].alert_count <= 1 and any(a.key == alert.primary_key for a in got[0].alerts):
                    return close_at_source(self.store, got[0].id, closed, alert.source, received, alert.primary_key)
                lifecycle.record_one_alert_closed(self.store, got[0], alert.primary_key, alert.source, closed, received)
                return IngestOutcome(
                    got[0].id,
                    got[0].priority,
                    got[0].status.value,
                    "duplicate",
                    got[0].score,
                    alert_key=alert.primary_key,
                    notes=[f"one alert closed at the source: {closed}"],
                )
            return self._duplicate_or_finish(got[0], alert, decision, partner, received)
        if not is_stale(claim, received):
            # The delivery that claimed it may still be writing the incident: give it a moment.
            got = self._await_incident(claim.incident_id)
            if got is not None:
                return self._duplicate(got[0], alert, decision, received)
        # Claimed by a delivery that failed or stopped before writing the incident (its sender was
        # told to retry, so this may be that retry): finish its work rather than answer "duplicate"
        # for an incident that does not exist.
        return self._create(claim.incident_id, alert, decision, partner, matched_by, received, recovered=True)

    # -- paths ------------------------------------------------------------------
    def _duplicate_or_finish(
        self, incident: Incident, alert: Alert, decision: TriageDecision, partner: Partner | None, received: datetime
    ) -> IngestOutcome:
        """A delivery of an alert already claimed for ``incident``: a duplicate once the alert's evidence
        exists; otherwise the delivery that claimed it failed part-way (its sender was told to retry)
        and this one finishes the join, so no alert, priority raise or runbook start is lost."""
        key = alert.primary_key
        for attempt in range(10):
            if attempt:
                time.sleep(0.15)  # a concurrent delivery may be between its writes
            events, head = self.store.read_timeline(incident.id)
            if any(key in alert_keys_of(ev) for ev in events):
                # The head read with the events saves the append its own read (it is ETag-guarded).
                return self._duplicate(incident, alert, decision, received, head=head)
        got = self.store.get_incident(incident.id)
        incident = got[0] if got else incident
        if all(a.key != key for a in incident.alerts):
            outcome = self._join(
                incident.id, alert, decision, partner, received, reason="completed on retry", claimed=True
            )
            if outcome is not None:
                return outcome
        # Merged into the incident, but its evidence (and runbook start) were lost with the failed delivery.
        drafts = [
            EventDraft(
                event_type="alert.grouped",
                phase=Phase.DETECT,
                occurred_at=received,
                summary=f"{alert.source} alert joined the incident (recorded on retry): {alert.title}",
                data={"alert": alert_evidence(alert), "reason": "recorded on retry", "triage": decision.wire()},
            )
        ]
        runbook = None
        if incident.runbook_epoch > 1 and decision.priority == incident.priority:
            runbook = RunbookStart(
                incident.runbook_instance_id,
                {
                    "incidentId": incident.id,
                    "epoch": incident.runbook_epoch,
                    "reason": f"priority raised to {incident.priority.value} (recorded on retry)",
                },
            )
        self.store.append_events(incident.id, drafts)
        return IngestOutcome(
            incident.id,
            incident.priority,
            incident.status.value,
            "grouped",
            incident.score,
            runbook=runbook,
            alert_key=key,
        )

    def _await_incident(self, incident_id: str, attempts: int = 15, pause: float = 0.1) -> tuple[Incident, str] | None:
        """The incident once a concurrent delivery has written it, or None if it does not appear."""
        for _ in range(attempts):
            time.sleep(pause)
            got = self.store.get_incident(incident_id)
            if got is not None:
                return got
        return None

    def _duplicate(
        self,
        incident: Incident,
        alert: Alert,
        decision: TriageDecision,
        received: datetime,
        head: ChainHead | None = None,
    ) -> IngestOutcome:
        self.store.append_events(
            incident.id,
            [
                EventDraft(
                    event_type="alert.duplicate",
                    phase=Phase.DETECT,
                    occurred_at=received,
                    summary=f"Same alert delivered again ({alert.source}); no new action",
                    data={
                        "alertKey": alert.primary_key,
                        "source": alert.source,
                        "sourceId": alert.source_id,
                        **({"refs": refs} if (refs := alert_refs(alert.extended_properties)) else {}),
                    },
                )
            ],
            head=head,
        )
        return IngestOutcome(
            incident.id,
            incident.priority,
            incident.status.value,
            "duplicate",
            incident.score,
            alert_key=alert.primary_key,
            repair=RunbookStart(
                incident.runbook_instance_id,
                {
                    "incidentId": incident.id,
                    "epoch": incident.runbook_epoch,
                    "reason": "started by a redelivery of its alert (the first start was lost)",
                },
            )
            if incident.status.is_open
            else None,
        )

    def _claim_rest(self, alert: Alert, incident_id: str, received: datetime) -> list[str]:
        """Claim the alert's secondary keys; returns notes on keys owned by other incidents."""
        notes = []
        for key in alert.dedupe_keys[1:]:
            owner, _ = self.store.claim_alert(key, incident_id, received)
            if owner != incident_id:
                notes.append(f"{key} already belongs to {owner}")
        return notes

    def _create(
        self,
        incident_id: str,
        alert: Alert,
        decision: TriageDecision,
        partner: Partner | None,
        matched_by: str,
        received: datetime,
        recovered: bool = False,
        judgement: SourceJudgement | None = None,
        indexed: bool = False,
    ) -> IngestOutcome:
        """Open the incident (``indexed``: its grouping rows were written with the entity claims)."""
        triaged = self.clock()
        incident = open_incident(incident_id, alert, decision, partner, self._tz(partner), received, triaged)
        judgement = judgement or judge(alert)
        if judgement.starts_nothing:
            incident = lifecycle.recorded_only(incident, judgement, received)
        notes = self._claim_rest(alert, incident_id, received)
        # issue 14: a delivery that wrote the first events and failed before the incident row is finished
        # without a second ``alert.received`` (a retry never duplicates a timeline event).
        written = recovered and any(ev.event_type == "alert.received" for ev in self.store.list_events(incident_id))
        # The timeline is written before the incident becomes visible, so a concurrent
        # duplicate that finds the incident always appends after its first events.
        if not written:
            self._first_events(incident, alert, decision, matched_by, received, triaged, notes, recovered, judgement)
        try:
            self.store.create_incident(incident)
        except ConflictError:
            got = self.store.get_incident(incident_id)
            if got is None:  # created and gone again: only a purge deletes incidents
                raise ConcurrencyError(f"incident {incident_id} changed while it was being created") from None
            return self._duplicate(got[0], alert, decision, received)
        index_entities(self.store, incident, alert, written=indexed)
        return IngestOutcome(
            incident_id,
            incident.priority,
            incident.status.value,
            "created",
            decision.score,
            runbook=None
            if judgement.starts_nothing
            else RunbookStart(
                incident.runbook_instance_id,
                {"incidentId": incident_id, "epoch": incident.runbook_epoch, "reason": "new incident"},
            ),
            alert_key=alert.primary_key,
            notes=notes,
        )

    def _first_events(
        self,
        incident: Incident,
        alert: Alert,
        decision: TriageDecision,
        matched_by: str,
        received: datetime,
        triaged: datetime,
        notes: list[str],
        recovered: bool,
        judgement: SourceJudgement,
    ) -> None:
        self.store.append_events(
            incident.id,
            [
                EventDraft(
                    event_type="alert.received",
                    phase=Phase.DETECT,
                    occurred_at=received,
                    summary=f"{alert.source} alert received: {alert.title}",
                    data={
                        "alert": alert_evidence(alert),
                        "partner": {"id": incident.partner_id, "matchedBy": matched_by},
                        "notes": notes,
                        "recovered": recovered,
                    },
                ),
                EventDraft(
                    event_type="incident.triaged",
                    phase=Phase.TRIAGE,
                    occurred_at=triaged,
                    summary=triage_summary(decision),
                    data={"triage": decision.wire(), "sla": incident.sla.wire(), **judgement.wire()},
                ),
                *lifecycle.recorded_only_evidence(judgement, triaged),
            ],
            new_chain=not recovered,
        )

    def _join(
        self,
        incident_id: str,
        alert: Alert,
        decision: TriageDecision,
        partner: Partner | None,
        received: datetime,
        reason: str,
        claimed: bool = False,
        current: tuple[Incident, str] | None = None,
        rows: dict[str, EntityRows] | None = None,
        matched_by: str = "",
    ) -> IngestOutcome | None:
        """Add the alert to the incident (``current``: the incident just read; ``rows``: its entities' rows
        just read). None when the incident is missing, or closed for a look-alike."""
        current = current or self.store.get_incident(incident_id)
        if reason == "shared entity" and (current is None or not current[0].status.is_open):
            return None  # a closed incident is not reopened by a look-alike: open a new one
        key = alert.primary_key
        if not claimed and current is not None and any(a.key == key for a in current[0].alerts):
            # Already one of its alerts (its claim names this incident): a redelivery, answered as one.
            return self._known(AlertClaim(incident_id, ""), alert, decision, partner, received, matched_by, current)
        if not claimed:
            claim, won = self.store.try_claim_alert(key, incident_id, received)
            if not won:
                return self._known(claim, alert, decision, partner, received, matched_by)
        tz = self._tz(partner)
        merged = update_under_etag(
            lambda: versioned(self.store.get_incident(incident_id)),
            lambda incident, etag: self.store.replace_incident(incident, etag or ""),
            # Merged once only: a concurrent delivery finishing this one's join may have merged it already.
            lambda incident: (
                None
                if any(a.key == key for a in incident.alerts)
                else merge_alert(incident, alert, decision, tz, received)[0]
            ),
            what=f"incident {incident_id}",
            tries=20,
            first=versioned(current),  # the read above saves the first round trip
        )
        if merged is None:
            return None
        if not merged.written:  # the other delivery merged it and writes its evidence
            return self._duplicate(merged.before, alert, decision, received)
        incident, updated = merged.before, merged.after
        # The priority a new alert raised is the one of the merge that was written (merge_alert's rule).
        raised = updated.priority if updated.priority.rank < incident.priority.rank else None
        notes = self._claim_rest(alert, incident_id, received)
        index_entities(self.store, updated, alert, rows)
        drafts = [
            EventDraft(
                event_type="alert.grouped",
                phase=Phase.DETECT,
                occurred_at=received,
                summary=f"{alert.source} alert joined the incident ({reason}): {alert.title}",
                data={"alert": alert_evidence(alert), "reason": reason, "notes": notes, "triage": decision.wire()},
            )
        ]
        runbook = None
        if raised:
            drafts.append(
                EventDraft(
                    event_type="priority.changed",
                    phase=Phase.TRIAGE,
                    occurred_at=received,
                    summary=f"Priority raised {incident.priority.value} → {raised.value} by a new alert",
                    data={
                        "from": incident.priority.value,
                        "to": raised.value,
                        "reason": f"alert {alert.primary_key}",
                        "triage": decision.wire(),
                    },
                )
            )
            runbook = RunbookStart(
                runbook_instance_id(incident_id, updated.runbook_epoch),
                {
                    "incidentId": incident_id,
                    "epoch": updated.runbook_epoch,
                    "reason": f"priority raised to {raised.value}",
                    "previousPriority": incident.priority.value,
                },
            )
        self.store.append_events(incident_id, drafts)
        return IngestOutcome(
            incident_id,
            updated.priority,
            updated.status.value,
            "grouped",
            updated.score,
            runbook=runbook,
            alert_key=alert.primary_key,
            notes=notes,
        )
