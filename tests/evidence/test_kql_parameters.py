"""Entity values reach KQL only as base64 literals: hostile values cannot change a query's structure."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.enrichment import DIRECTORY_AUDIT, IP_ACTIVITY, KEY_VAULT, SIGNINS, bind, kql_string, plan_queries
from shared.models import Entity, EntityKind
from tests.evidence.seed import make_incident

UTC = UTC
LITERAL = re.compile(r"base64_decode_tostring\('([^']*)'\)")
HOSTILE = [
    "alice@contoso.example",
    "x'; drop table SigninLogs; //",
    'a" | take 1 | project secret',
    "line1\nline2\r\n| union *",
    "'' or 1==1 or ''",
    "@'verbatim''",
    "\\' escaped \\\\",
    "h'obfuscated'",
    "```multi```",
    "🙂 ünïcode 日本語",
    "\x00nul\x07bell",
    "\ud800 lone surrogate",
    "a" * 1000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_kql_string_is_a_closed_base64_literal_that_decodes_to_the_value(value):
    expr = kql_string(value)
    m = LITERAL.fullmatch(expr)
    assert m, expr
    assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", m.group(1))
    expected = value.encode("utf-8", errors="replace")
    assert base64.b64decode(m.group(1)) == expected


def _structure(query: str) -> str:
    """The query with every base64 payload blanked: what the values could have changed, if anything."""
    return LITERAL.sub("base64_decode_tostring('…')", query)


@pytest.mark.parametrize(
    "template, names",
    [
        (SIGNINS, ("p_upn", "p_object_id")),
        (DIRECTORY_AUDIT, ("p_upn", "p_object_id")),
        (IP_ACTIVITY, ("p_ip",)),
    ],
)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_leave_the_query_structure_unchanged(template, names, value):
    benign = bind(template, dict.fromkeys(names, "benign"))
    hostile = bind(template, dict.fromkeys(names, value))
    assert _structure(hostile) == _structure(benign)
    # Outside the literals the query text holds nothing of the value.
    outside = LITERAL.sub("", hostile)
    if len(value) > 3 and value not in ("benign",):
        assert value not in outside
    # The statement structure: one let per parameter, then the constant template verbatim.
    lines = hostile.split("\n")
    # Not strict: the template's own lines follow the lets.
    assert all(line.startswith(f"let {n} = base64_decode_tostring('") for line, n in zip(lines, names, strict=False))
    assert "\n".join(lines[len(names) :]) == template


def test_bind_refuses_odd_parameter_names_and_non_strings():
    with pytest.raises(ValueError):
        bind(SIGNINS, {"p_upn; drop": "x"})
    with pytest.raises(ValueError):
        bind(SIGNINS, {"upn": "x"})
    with pytest.raises(TypeError):
        kql_string(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kql_string("x" * 5000)


def test_planned_queries_carry_no_raw_entity_value():
    evil_upn = "eve'; SigninLogs | take 100000 //@contoso.example"
    evil_vault = (
        "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
        "Microsoft.KeyVault/vaults/kv'|take 1"
    )
    inc = make_incident(
        "kql",
        datetime(2026, 5, 4, 10, tzinfo=UTC),
        entities=[
            Entity(kind=EntityKind.ACCOUNT, upn=evil_upn, object_id="00000000-0000-0000-0000-0000000000aa"),
            Entity(kind=EntityKind.IP, address="203.0.113.9"),
            Entity(kind=EntityKind.IP, address="not-an-ip'; drop"),
            Entity(kind=EntityKind.AZURE_RESOURCE, azure_resource_id=evil_vault + "/secrets/s1"),
        ],
    )
    plans = plan_queries(inc, datetime(2026, 5, 4, 11, tzinfo=UTC))
    assert [p.kind for p in plans] == ["signins", "directory-audit", "ip-activity", "keyvault-operations"]
    for plan in plans:
        for raw in (evil_upn, "203.0.113.9", "kv'|take 1", "not-an-ip"):
            assert raw not in plan.kql
    vault = plans[-1]
    assert vault.entity == evil_vault  # evidence names the vault; the query only carries its base64
    assert KEY_VAULT in vault.kql and "let p_window_start = datetime(2026-05-03T09:58:00.000000Z);" in vault.kql
    assert vault.start == datetime(2026, 5, 3, 9, 58, tzinfo=UTC) - timedelta(days=7)
    assert plans[0].start == datetime(2026, 5, 3, 9, 58, tzinfo=UTC) and plans[0].end == datetime(
        2026, 5, 4, 11, tzinfo=UTC
    )
