"""soc-responder: assembles the Functions app from its blueprints (nothing else happens here)."""

import azure.durable_functions as df

from functions import (
    anchor,
    approvals,
    console,
    contact_pager,
    containment,
    escalation,
    evidence_api,
    ingest,
    mail_pacing,
    notify,
    operator,
    preflight,
    replay,
    runbook,
    suppressions,
    teams,
    workspace_poll,
    writeback,
)


def build_app() -> df.DFApp:
    """A new app with every blueprint registered (tests build a fresh one per run)."""
    app = df.DFApp()
    app.register_functions(ingest.bp)
    app.register_functions(runbook.bp)
    app.register_functions(operator.bp)
    app.register_functions(notify.bp)
    app.register_functions(escalation.bp)  # the phone escalation of one incident (split from notify)
    app.register_functions(containment.bp)
    app.register_functions(evidence_api.bp)
    app.register_functions(writeback.bp)
    app.register_functions(preflight.bp)  # partner preflight (docs/spec/tenancy.md)
    app.register_functions(workspace_poll.bp)  # partners' own Sentinel workspaces
    app.register_functions(anchor.bp)  # evidence anchors (docs/spec/access.md)
    app.register_functions(replay.bp)  # what-if replay (docs/spec/triage.md)
    app.register_functions(approvals.bp)  # issue 14: POST /api/approvals (bulk decision on held containment)
    app.register_functions(suppressions.bp)  # issue 14: maintenance windows
    app.register_functions(console.bp)  # issue 16: the console (docs/spec/console.md)
    app.register_functions(mail_pacing.bp)  # issue 14: storm summaries and the mail pacer (timer mail_pacer)
    app.register_functions(teams.bp)  # issue 16: Teams cards, posted apart from email and calls
    app.register_functions(contact_pager.bp)  # issue 14: one phone escalation per contact number
    return app


app = build_app()
