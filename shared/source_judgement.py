"""What the source itself says about an alert (docs/spec/triage.md, "The source's judgement"): is it a
test or sample, and is it already closed (pure, base module).

A SOC lead reads these at a glance before anything else: Defender's "create sample alerts" and the EICAR
test file say "not a threat"; an incident a Sentinel analyst already closed as a false positive is history,
not work. Ingest records such alerts and starts nothing; scoring keeps test alerts at P4.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import Alert

# Where the parsers keep the source's lifecycle (shared/intake/*): the status and, for Sentinel, the
# analyst's classification. Kept in ``extended_properties`` so every shape and the poll carry it alike.
SOURCE_STATUS = "sourceStatus"
SOURCE_CLASSIFICATION = "sourceClassification"

# Statuses meaning "nothing left to do" in each source: Sentinel Closed; Defender for Cloud Dismissed /
# Resolved (and the Graph security API's "resolved"); Defender XDR incidents "Resolved" / "Redirected".
CLOSED_STATUSES = frozenset({"closed", "dismissed", "resolved", "redirected"})
# Sentinel classifications that close the question of a threat.
NOT_A_THREAT_CLASSIFICATIONS = frozenset({"falsepositive", "benignpositive"})

# Phrases the sources use for alerts that are not threats (matched case-insensitively on title,
# description and alert type). Defender for Cloud sample alerts are titled "[SAMPLE ALERT] …" or carry
# "sample alert" in their description; the EICAR / validation alerts say "test alert" and "not a threat".
_TEST_PHRASES = ("[sample alert]", "sample alert", "(not a threat)", "not a threat", "eicar")
_TEST_ALERT_TYPES = ("*_eicar*", "*eicar*", "*sample*", "*_test", "*_testalert*", "*alerttest*")
_TEST_PROPERTIES = ("issample", "is sample", "sample alert", "istestalert", "testalert")


@dataclass(frozen=True)
class SourceJudgement:
    """The source's own verdict on an alert, before our rules."""

    test: bool = False
    test_reason: str | None = None
    closed: bool = False
    closed_reason: str | None = None
    # issue 14: the partner's maintenance window that covers the alert (shared/suppressions.py), as evidenced
    suppressed_by: dict | None = None

    @property
    def starts_nothing(self) -> bool:
        """Recorded as evidence only: no runbook, no containment, no notification."""
        return self.closed or self.test or self.suppressed_by is not None

    def wire(self) -> dict:
        out: dict = {}
        if self.test:
            out["test"] = True
            out["testReason"] = self.test_reason
        if self.closed:
            out["closedAtSource"] = True
            out["closedReason"] = self.closed_reason
        if self.suppressed_by is not None:
            out["suppressed"] = True
            out["suppression"] = self.suppressed_by
        return out


def _glob(value: str, patterns: tuple[str, ...]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def why_test(alert: Alert) -> str | None:
    """Why the source says this alert is a test or sample, or None."""
    text = " ".join(x for x in (alert.title, alert.description or "") if x).lower()
    for phrase in _TEST_PHRASES:
        if phrase in text:
            return f"the source marks it as a test/sample alert ({phrase.strip('()[]')!r})"
    if "test alert" in text and ("threat" in text or "validation" in text):
        return "the source marks it as a test alert"
    for t in (alert.alert_type or "").lower().split(","):
        t = t.strip()
        if t and _glob(t, _TEST_ALERT_TYPES):
            return f"alert type {t!r} is a test/sample type"
    for key, value in alert.extended_properties.items():
        if key.strip().lower() in _TEST_PROPERTIES and value.strip().lower() in ("true", "yes", "1"):
            return f"extended property {key!r} is {value!r}"
    return None


def why_closed(alert: Alert) -> str | None:
    """Why the source says this alert or incident is already closed, or None."""
    props = alert.extended_properties
    status = (props.get(SOURCE_STATUS) or props.get("sentinelStatus") or "").strip()
    classification = (props.get(SOURCE_CLASSIFICATION) or "").strip()
    if classification.replace(" ", "").lower() in NOT_A_THREAT_CLASSIFICATIONS:
        return f"classified {classification} at the source"
    if status.lower() in CLOSED_STATUSES:
        return f"already {status} at the source"
    return None


def judge(alert: Alert) -> SourceJudgement:
    """The source's verdict (pure)."""
    test = why_test(alert)
    closed = why_closed(alert)
    return SourceJudgement(test=test is not None, test_reason=test, closed=closed is not None, closed_reason=closed)
