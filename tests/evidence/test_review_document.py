"""Post-incident review: due dates, contents, escaping, submissions (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ValidationError
from shared.evidence import GENESIS_HASH, EventDraft, chain
from shared.models import ActorType, IncidentStatus, Phase, Priority
from shared.review import ReviewSubmission, build_review, md_block, md_inline, render_html, render_markdown, review_due
from tests.evidence.seed import make_incident, timeline

UTC = UTC
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
MD_TRICKS = "[click](javascript:alert(1)) **bold** `code` | pipe | ![img](http://x/y.png) <b>b</b> &amp;"


def _events(incident, extra=()):
    drafts = timeline(incident, 4) + list(extra)
    return chain(incident.id, drafts, 0, GENESIS_HASH)


def test_due_is_five_business_days_after_resolution_in_the_partner_time_zone():
    # Resolved Friday 2026-11-20 15:00 New York (20:00 UTC): due Friday 2026-11-27 15:00 New York.
    resolved = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
    inc = make_incident("due1", resolved - timedelta(days=2), status=IncidentStatus.RESOLVED, resolved_at=resolved)
    due, basis = review_due(inc, "America/New_York")
    assert (due, basis) == (datetime(2026, 11, 27, 20, 0, tzinfo=UTC), "resolution")
    # Friday 23:30 in New York is Saturday 13:30 in Tokyo: five business days end on different days.
    late = datetime(2026, 11, 21, 4, 30, tzinfo=UTC)
    inc2 = make_incident("due2", late - timedelta(hours=3), status=IncidentStatus.RESOLVED, resolved_at=late)
    assert review_due(inc2, "America/New_York")[0] == datetime(2026, 11, 28, 4, 30, tzinfo=UTC)  # Fri 23:30 NY
    assert review_due(inc2, "Asia/Tokyo")[0] == datetime(2026, 11, 27, 4, 30, tzinfo=UTC)  # Fri 13:30 JST


def test_due_counts_from_detection_while_open():
    detected = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday
    inc = make_incident("open1", detected)
    assert review_due(inc, "UTC") == (datetime(2026, 3, 9, 9, 0, tzinfo=UTC), "detection")


def test_review_contents_from_the_timeline_and_submissions():
    t = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    inc = make_incident("rev1", t, priority=Priority.P1, partner_id="contoso")
    extra = [
        EventDraft(
            event_type="priority.changed",
            phase=Phase.TRIAGE,
            occurred_at=t + timedelta(hours=1),
            actor="ana@soc.example",
            actor_type=ActorType.ANALYST,
            summary="lowered",
            data={"from": "P1", "to": "P2", "reason": "false positive for the VM part"},
        ),
        EventDraft(
            event_type="review.submitted",
            phase=Phase.REVIEW,
            occurred_at=t + timedelta(days=1),
            actor="ana@soc.example",
            actor_type=ActorType.ANALYST,
            summary="review",
            data={"fields": {"rootCause": "old cause", "impact": "none"}},
        ),
        EventDraft(
            event_type="review.submitted",
            phase=Phase.REVIEW,
            occurred_at=t + timedelta(days=2),
            actor="bo@soc.example",
            actor_type=ActorType.ANALYST,
            summary="review",
            data={"fields": {"rootCause": "phished token", "actionItems": [{"description": "MFA for all"}]}},
        ),
    ]
    events = _events(inc, extra)
    review = build_review(
        inc,
        events,
        [{"kind": "isolate-vm", "targetDisplay": "vm-1", "status": "dry-run", "updatedAt": "2026-03-02T09:05:00.000Z"}],
        "America/New_York",
        t + timedelta(days=3),
    )
    assert review.root_cause == "phished token" and review.impact == "none"  # later submission wins per field
    assert [a.description for a in review.action_items] == ["MFA for all"]
    assert review.complete and not review.overdue and review.missing == []
    assert review.initial_priority == "P1"
    assert [(c.from_priority, c.to_priority, c.actor) for c in review.severity_changes] == [
        ("P1", "P2", "ana@soc.example")
    ]
    assert [c.fields for c in review.contributions] == [["rootCause", "impact"], ["rootCause", "actionItems"]]
    assert review.detected_at == "2026-03-02T09:00:00.000Z" and review.due_basis == "detection"
    assert review.containment_state[0].summary == "isolate-vm vm-1: dry-run"
    assert review.chain.valid and review.chain.events == len(events)
    assert len(review.timeline) == len(events) and review.notifications and review.containment


def test_incomplete_review_past_due_is_overdue_and_a_broken_chain_shows():
    t = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    inc = make_incident("rev2", t)
    events = _events(inc)
    events[1].summary = "edited"
    review = build_review(inc, events, [], "UTC", t + timedelta(days=8))
    assert review.overdue and review.missing == ["root cause", "action items"]
    assert not review.chain.valid and review.chain.broken_at == 2
    assert "BROKEN at event 2" in render_markdown(review)


def _hostile_review():
    t = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    inc = make_incident("xss", t, title=XSS + " " + MD_TRICKS)
    extra = [
        EventDraft(
            event_type="review.submitted",
            phase=Phase.REVIEW,
            occurred_at=t + timedelta(hours=2),
            actor=XSS,
            actor_type=ActorType.ANALYST,
            summary=MD_TRICKS,
            data={
                "fields": {
                    "rootCause": "# heading\n- list\n1. ordered\n> quote\n" + XSS,
                    "actionItems": [{"description": MD_TRICKS, "owner": XSS}],
                }
            },
        )
    ]
    return build_review(inc, _events(inc, extra), [], "UTC", t + timedelta(days=1))


def test_html_escapes_every_value():
    page = render_html(_hostile_review())
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "href=" not in page and "javascript:alert" in page  # shown as text, never a link


def test_markdown_escapes_every_value():
    md = render_markdown(_hostile_review())
    assert not re.search(r"(?<!\\)[<>]", md)  # no raw angle bracket: no HTML
    assert "](javascript" not in md and "[click]" not in md
    assert "**bold**" not in md and "`code`" not in md
    # Hostile text cannot open a block construct at the start of a line.
    for line in md.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# Post-incident review: ", "## ")), line
        assert not re.match(r"^(> |- |\d+\. )", line), line
    # Table rows keep their column count: pipes in values are escaped.
    rows = [line for line in md.splitlines() if line.startswith("| ") and "review.submitted" in line]
    assert rows and all(len(re.findall(r"(?<!\\)\|", r)) == 8 for r in rows)  # 7 columns


def test_md_helpers():
    assert md_inline("a|b\nc") == "a\\|b c"
    assert md_block("- x\n# y\n  3. z") == "\\- x  \n\\# y  \n3\\. z"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"rootCause": "x"}, "actor"),
        ({"actor": "  ", "rootCause": "x"}, "actor"),
        ({"actor": "a@b.example"}, "body"),
        ({"actor": "a@b.example", "root_cause": "x"}, "root_cause"),
        ({"actor": "a@b.example", "actionItems": [{"owner": "x"}]}, "actionItems.0.description"),
        ({"actor": "a@b.example", "actionItems": [{"description": "x", "due": "soon"}]}, "actionItems.0.due"),
        ({"actor": "a@b.example", "impact": "x" * 20001}, "impact"),
        ({"actor": "a@b.example", "actionItems": "do things"}, "actionItems"),
        (["not", "an", "object"], "body"),
    ],
)
def test_bad_submissions_name_the_field(body, field):
    with pytest.raises(ValidationError) as exc:
        ReviewSubmission.parse(body)
    fields = [d["field"] for d in exc.value.details]
    assert field in fields or (field == "body" and fields == [""]) or fields[0].startswith(field), fields


def test_submission_accepts_strings_as_action_items_and_drops_control_characters():
    s = ReviewSubmission.parse(
        {
            "actor": "ana@soc.example",
            "actionItems": [
                "rotate keys",
                {"description": "MFA", "owner": "it@contoso.example", "due": "2026-04-01", "status": "done"},
            ],
            "rootCause": "tok\x07en\x00 theft",
        }
    )
    assert s.fields() == {
        "rootCause": "token theft",
        "actionItems": [
            {"description": "rotate keys", "owner": None, "due": None, "status": "open"},
            {"description": "MFA", "owner": "it@contoso.example", "due": "2026-04-01", "status": "done"},
        ],
    }
