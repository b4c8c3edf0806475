"""Notifications rows parse from and serialise to exactly the JSON documents earlier versions stored."""

from __future__ import annotations

import pytest

from shared.notify.records import CallRecord, DigestQueueRecord, EmailRecord

CALL = {
    "channel": "call",
    "kind": "escalation-call",
    "status": "placing",
    "incidentId": "INC-1",
    "escalationId": "escalation-INC-1",
    "requestKey": "runbook-e1",
    "attempt": 1,
    "contactName": "Dana Reyes",
    "recipient": "+15555550100",
    "target": "+15555550100",
    "tokenHash": "ab" * 32,
    "scheduledAt": None,
    "createdAt": "2026-05-04T10:07:30.000Z",
    "updatedAt": "2026-05-04T10:07:30.000Z",
    "prompts": 0,
    "partnerContact": True,
}
EMAIL = {
    "channel": "email",
    "kind": "new-incident",
    "status": "sending",
    "recipients": ["soc-alerts@contoso.example"],
    "recipient": "soc-alerts@contoso.example",
    "subject": "[P1 Critical] New security incident",
    "importance": "high",
    "text": "…",
    "htmlSha256": "cd" * 32,
    "createdAt": "2026-05-04T10:07:30.000Z",
    "updatedAt": "2026-05-04T10:07:30.000Z",
    "tries": 1,
    "epoch": 1,
}
DIGEST = {
    "channel": "digest",
    "kind": "digest",
    "status": "queued",
    "createdAt": "2026-05-04T10:07:30.000Z",
    "updatedAt": "2026-05-04T10:07:30.000Z",
    "partnerId": None,
}


@pytest.mark.parametrize(("model", "doc"), [(CallRecord, CALL), (EmailRecord, EMAIL), (DigestQueueRecord, DIGEST)])
def test_rows_round_trip_unchanged(model, doc):
    assert model.parse(doc).wire() == doc
    assert model.parse({**doc, "addedByALaterVersion": {"x": 1}}).wire() == {**doc, "addedByALaterVersion": {"x": 1}}


def test_a_change_adds_only_what_it_sets():
    row = CallRecord.parse(CALL).changed(status="placed", call_connection_id="c-1", correlation_id=None)
    assert row.wire() == {**CALL, "status": "placed", "callConnectionId": "c-1", "correlationId": None}
    assert CallRecord.parse(CALL).wire() == CALL  # records are values: the original is untouched
    with pytest.raises(TypeError):
        row.changed(callConnectionId="camel case is the stored name, not a field")
