"""Coverage report (issue 13): for every catalogue entry, the priority the current rules give it and the
rules that fire — ``python -m shared.triage.coverage [--rules FILE] [--summary]`` or ``make coverage-report``.

Each entry becomes the alert its source would send (type, name, severity, tactics, techniques, product)
and is scored exactly as ingest scores it. An entry whose priority differs from its family's is listed
as a mismatch: a SOC lead sees at once where a local rule overrides the catalogue.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.models import Alert, Priority, TriageDecision
from shared.scoring import ScoringRules, score_alert
from shared.triage.catalogue import AlertCatalogue, Entry, catalogue_path, load_rules

_AT = datetime(2026, 1, 1, tzinfo=UTC)
# Which intake path an entry's alerts arrive by, by the prefix of its source id (one source per published page).
_SOURCE = (
    ("defender-for-cloud-apps", "sentinel"),
    ("defender-for-cloud", "defender"),
    ("entra-", "log-analytics"),
    ("defender-xdr", "sentinel"),
    ("defender-for-identity", "sentinel"),
)


def _source_of(source_id: str) -> str:
    return next((path for prefix, path in _SOURCE if source_id.startswith(prefix)), "generic")


@dataclass(frozen=True)
class CoverageRow:
    entry: Entry
    decision: TriageDecision
    expected: str  # the family's priority ("by severity" when the source severity decides)

    @property
    def mismatch(self) -> bool:
        return self.expected not in ("by severity", self.decision.priority.value)

    @property
    def rules(self) -> list[str]:
        return [h.rule_id for h in self.decision.rules_fired if h.rule_id not in ("severity-base", "default-base")]


def entry_alert(entry: Entry, index: int) -> Alert:
    """The alert an entry's source would send (what ingest would score)."""
    return Alert(
        source=_source_of(entry.source),
        source_id=f"catalogue-{index}",
        dedupe_keys=[f"catalogue:{index}"],
        title=entry.title,
        alert_type=entry.alertType,
        severity=entry.severity,
        tactics=entry.tactics,
        techniques=entry.techniques,
        product=entry.products[0] if entry.products else None,
        observed_at=_AT,
    )


def coverage(catalogue: AlertCatalogue, rules: ScoringRules) -> list[CoverageRow]:
    return [
        CoverageRow(e, score_alert(entry_alert(e, i), rules), catalogue.families[e.family].priority)
        for i, e in enumerate(catalogue.entries)
    ]


def per_priority(rows: list[CoverageRow]) -> dict[str, int]:
    counts = Counter(r.decision.priority.value for r in rows)
    return {p.value: counts.get(p.value, 0) for p in Priority}


def render(rows: list[CoverageRow], catalogue: AlertCatalogue, rules: ScoringRules, summary_only: bool = False) -> str:
    lines = [
        f"Alert catalogue {catalogue.version} (retrieved {catalogue.retrieved}), rules {rules.version}",
        "Sources: " + "; ".join(f"{s.title} <{s.url}>" for s in catalogue.sources),
        "",
    ]
    if not summary_only:
        lines.append(f"{'source/plan':34} {'alert':58} {'sev':13} {'→':3} {'family':26} rules")
        for r in rows:
            e = r.entry
            name = e.alertType or e.title
            flag = "  ← MISMATCH (family says " + r.expected + ")" if r.mismatch else ""
            lines.append(
                f"{e.source + '/' + e.plan:34} {name[:58]:58} {e.severity:13} {r.decision.priority.value:3} "
                f"{e.family:26} {', '.join(r.rules) or '(source severity)'}{flag}"
            )
        lines.append("")
    counts = per_priority(rows)
    lines.append(f"{len(rows)} catalogue entries: " + ", ".join(f"{p} {n}" for p, n in counts.items()))
    by_severity = [r for r in rows if r.expected == "by severity"]
    lines.append(f"{len(by_severity)} entries without a family rule (the source severity decides)")
    checked = sum(1 for r in rows if r.entry.checked)
    lines.append(f"{checked} entries checked against the published page in the catalogue's last edit")
    per_source = Counter(r.entry.source for r in rows)
    checked_per_source = Counter(r.entry.source for r in rows if r.entry.checked)
    lines.append(
        "Per source (checked/entries): "
        + ", ".join(f"{s} {checked_per_source.get(s, 0)}/{n}" for s, n in per_source.items())
    )
    mismatches = [r for r in rows if r.mismatch]
    lines.append(f"{len(mismatches)} entries whose priority differs from their family's")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.triage.coverage", description=__doc__)
    parser.add_argument("--rules", default="config/scoring-rules.json", help="rules file (SCORING_RULES_FILE)")
    parser.add_argument("--summary", action="store_true", help="the totals only")
    args = parser.parse_args(argv)
    rules = load_rules(args.rules)
    cat_path = catalogue_path(args.rules, ScoringRules.load(args.rules))
    if cat_path is None:
        print(f"{args.rules} names no catalogue", file=sys.stderr)
        return 2
    catalogue = AlertCatalogue.load(cat_path)
    rows = coverage(catalogue, rules)
    print(render(rows, catalogue, rules, summary_only=args.summary))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
