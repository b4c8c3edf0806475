"""Evidence tests: the lead's functional ``app`` harness, and a raw table client for tampering tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def timeline_table(app):  # ``app``: the harness fixture (tests/fixtures/app.py)
    """The IncidentTimeline table through its own client: what someone with storage access could edit."""
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(app.context.settings.evidence_connection_string)
    return service.get_table_client("IncidentTimeline")
