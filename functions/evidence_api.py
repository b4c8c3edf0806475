"""Auditor and review routes (docs/spec/evidence.md, docs/spec/operator-api.md), the overdue-review timer and the investigation activity.

- ``GET /api/evidence?from=&to=&format=csv|json|jsonl`` (+ ``partner``, ``priority``, ``incident``,
  ``limit``, ``continuationToken``): the evidence export. The Python worker needs a whole body per
  response (HTTP streaming would switch every route of the app to FastAPI types), so a long range is
  served in pages of at most ``limit`` rows, each generated in bounded chunks; the next page's
  token is in ``X-Continuation-Token`` and ``Link: <…>; rel="next"`` (docs/auditor-guide.md).
- ``GET /api/incidents/{id}/review`` (Markdown; ``?format=html|json``) and ``POST`` of the fields an
  analyst fills in (each submission an evidence event).
- ``GET /api/reports/sla?from=&to=&partner=&format=json|csv``.
- Timer ``review_overdue_watch`` (daily): flags each overdue post-incident review once.
- Activity ``investigate_incident``: Log Analytics enrichment, called by the runbook's Investigate step.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import azure.durable_functions as df
import azure.functions as func

from functions.access import operator_access
from functions.http import handle_errors, json_response, read_json
from shared import runtime
from shared.errors import ValidationError

bp = df.Blueprint()
log = logging.getLogger("soc_responder.evidence")

_SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# The review page carries analyst-written text: nothing in it may run or load anything.
_HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _param(req: func.HttpRequest, name: str) -> str | None:
    value = req.params.get(name)
    return value if value is None or len(value) <= 2000 else value[:2000]


def _int_param(req: func.HttpRequest, name: str, default: int) -> int:
    raw = _param(req, name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ValidationError(
            f"invalid query parameter {name}", [{"field": name, "message": "expected a whole number"}]
        ) from None


def _text_response(body: str | bytes, mimetype: str, headers: dict[str, str]) -> func.HttpResponse:
    """A 200 with a UTF-8 body of ``mimetype`` (Content-Type also in the headers, as clients see it)."""
    return func.HttpResponse(
        body,
        status_code=200,
        mimetype=mimetype,
        charset="utf-8",
        headers={**_SECURITY_HEADERS, **headers, "Content-Type": f"{mimetype}; charset=utf-8"},
    )


def _next_link(req: func.HttpRequest, token: str) -> str:
    """This request's URL with the next token; a function key given as ``code=`` is not echoed back."""
    parts = urlsplit(req.url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("continuationToken", "code")
    ]
    query.append(("continuationToken", token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


# -- evidence export -------------------------------------------------------------------------------
@bp.route(route="evidence", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("evidence")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def export_evidence(req: func.HttpRequest) -> func.HttpResponse:
    """One page of the evidence export (all of it when it fits in ``limit`` rows)."""
    from shared.export import COLUMNS, DEFAULT_PAGE_SIZE, ExportQuery, decode_cursor, export_page, parse_format

    query = ExportQuery.from_params(
        {k: _param(req, k) or "" for k in ("from", "to", "partner", "priority", "incident")}
    )
    fmt = parse_format(_param(req, "format"))
    limit = _int_param(req, "limit", DEFAULT_PAGE_SIZE)
    token = _param(req, "continuationToken")
    after = decode_cursor(token, query) if token else None
    bom = (_param(req, "bom") or "").lower() in ("1", "true", "yes")
    ctx = runtime.context()
    page = await asyncio.to_thread(export_page, ctx.store, query, fmt, limit, after, bom=bom)
    span = f"{_param(req, 'from') or 'start'}-{_param(req, 'to') or 'now'}"
    safe_span = "".join(c for c in span if c.isalnum() or c in "-_")[:60]
    headers = {
        "X-Evidence-Rows": str(page.rows),
        "X-Evidence-Columns": ",".join(COLUMNS),
        "Content-Disposition": f'attachment; filename="evidence-{safe_span}.{fmt}"',
    }
    if page.continuation_token:
        headers["X-Continuation-Token"] = page.continuation_token
        headers["Link"] = f'<{_next_link(req, page.continuation_token)}>; rel="next"'
    return _text_response(page.body, page.content_type, headers)


# -- post-incident review --------------------------------------------------------------------------
@bp.route(route="incidents/{id}/review", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("review")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def get_review(req: func.HttpRequest) -> func.HttpResponse:
    """The post-incident review: Markdown (default), ``?format=html`` or ``?format=json``."""
    from shared.review import render_html, render_markdown

    fmt = (_param(req, "format") or "markdown").strip().lower()
    if fmt not in ("markdown", "md", "html", "json"):
        raise ValidationError(
            "invalid query parameter format", [{"field": "format", "message": "expected markdown, html or json"}]
        )
    review = await asyncio.to_thread(runtime.context().reviews.review, req.route_params.get("id", ""))
    if fmt == "json":
        return json_response(200, review.wire(), headers=_SECURITY_HEADERS)
    if fmt == "html":
        return _text_response(render_html(review), "text/html", {"Content-Security-Policy": _HTML_CSP})
    return _text_response(render_markdown(review), "text/markdown", {})


@bp.route(route="incidents/{id}/review", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("review.submit")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def submit_review(req: func.HttpRequest) -> func.HttpResponse:
    """Record review fields (root cause, impact, action items …) as an evidence event."""
    from shared.review import ReviewSubmission

    submission = ReviewSubmission.parse(read_json(req))
    review, event = await asyncio.to_thread(
        runtime.context().reviews.submit, req.route_params.get("id", ""), submission
    )
    return json_response(
        200,
        {
            "incidentId": review.incident_id,
            "complete": review.complete,
            "missing": review.missing,
            "dueAt": review.due_at,
            "recorded": {"seq": event.seq, "eventType": event.event_type, "hash": event.hash},
            "review": review.wire(),
        },
    )


@bp.timer_trigger(schedule="0 0 6 * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
def review_overdue_watch(timer: func.TimerRequest) -> None:
    """Daily: flag (once) every post-incident review past its 5-business-day due date and incomplete."""
    report = runtime.context().reviews.flag_overdue()
    log.info(
        "review watch: %d checked, %d flagged, %d complete, %d not due, %d errors",
        report.checked,
        len(report.flagged),
        report.complete,
        report.not_due,
        len(report.errors),
    )


# -- SLA report ------------------------------------------------------------------------------------
@bp.route(route="reports/sla", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("reports")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def sla_report(req: func.HttpRequest) -> func.HttpResponse:
    """Time to triage / first response against the targets and per-priority SLAs, breaches listed."""
    from shared.export import NO_PARTNER, parse_partner, parse_time_bound
    from shared.reports import report_csv_rows

    fmt = (_param(req, "format") or "json").strip().lower()
    if fmt not in ("json", "csv"):
        raise ValidationError(
            "invalid query parameter format", [{"field": "format", "message": "expected json or csv"}]
        )
    now = datetime.now(UTC)
    to_param, from_param = _param(req, "to"), _param(req, "from")
    stop = parse_time_bound(to_param, "to", end=True) if to_param else now
    if from_param:
        start = parse_time_bound(from_param, "from", end=False)
    elif stop - datetime.min.replace(tzinfo=UTC) > timedelta(days=30):
        start = stop - timedelta(days=30)
    else:
        raise ValidationError("invalid query parameter to", [{"field": "to", "message": "too early"}])
    if stop <= start:
        raise ValidationError("invalid query parameter to", [{"field": "to", "message": "must not be before from"}])
    partner = parse_partner(_param(req, "partner"))
    store_partner = "" if partner == NO_PARTNER else partner
    report = await asyncio.to_thread(runtime.context().sla_reports.report, start, stop, store_partner)
    if fmt == "json":
        return json_response(200, report.wire(), headers=_SECURITY_HEADERS)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(report_csv_rows(report))
    return _text_response(buf.getvalue(), "text/csv", {"Content-Disposition": 'attachment; filename="sla-report.csv"'})


# -- Investigate (docs/spec/lifecycle.md) ------------------------------------------------------------------------------
@bp.activity_trigger(input_name="request")
def investigate_incident(request: dict) -> dict:
    """Attach related Log Analytics activity to the incident; skipped when no workspace is configured.

    Never fails the runbook for a query problem: failures, partial results and timeouts are evidenced
    per query. Idempotent: a re-run skips queries already evidenced for the epoch.
    """
    incident_id = request.get("incidentId")
    epoch = int(request.get("epoch") or 1)
    investigator = runtime.context().investigator
    if investigator is None:
        return {"incidentId": incident_id, "epoch": epoch, "skipped": "LOG_ANALYTICS_WORKSPACE_ID is not set"}
    return investigator.investigate(incident_id, epoch)
