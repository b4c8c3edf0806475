"""Registry validation for tenancy (issue 11, docs/spec/tenancy.md): tenantId, workspaces, overlaps refused."""

from __future__ import annotations

import json

import pytest

from shared.errors import ConfigurationError
from shared.partners import PartnerRegistry

T_A = "aaaaaaaa-0000-4000-8000-00000000000a"
T_B = "bbbbbbbb-0000-4000-8000-00000000000b"
S_A = "aaaaaaaa-1111-4000-8000-00000000000a"
S_B = "bbbbbbbb-1111-4000-8000-00000000000b"
W_A = "aaaaaaaa-2222-4000-8000-00000000000a"


def _load(tmp_path, *partners: dict):
    path = tmp_path / "partners.json"
    path.write_text(json.dumps({"partners": list(partners)}))
    return PartnerRegistry.load(path)


def _ws(sub: str = S_A, ws_id: str = W_A, **over) -> dict:
    return {
        "subscriptionId": sub,
        "resourceGroup": "rg-sec",
        "workspaceName": "law-sentinel",
        "workspaceId": ws_id,
        **over,
    }


def test_tenant_id_defaults_to_first_tenant_and_workspaces_join_resolution(tmp_path):
    reg = _load(
        tmp_path, {"id": "a", "name": "A", "tenantIds": [T_A.upper()], "subscriptionIds": [S_A], "workspaces": [_ws()]}
    )
    partner = reg.get("a")
    assert partner is not None and partner.tenantId == T_A
    assert partner.workspaceIds == [W_A]  # a workspace's id resolves alerts like workspaceIds
    assert partner.workspaces[0].resource_id.endswith(
        "/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/workspaces/law-sentinel"
    )
    assert reg.owner_of_subscription(S_A.upper()) is partner and partner.owns_subscription(S_A)
    assert not partner.owns_subscription(S_B) and reg.owner_of_subscription(S_B) is None


def test_explicit_tenant_id_is_added_to_tenant_ids(tmp_path):
    reg = _load(tmp_path, {"id": "a", "name": "A", "tenantId": T_A, "subscriptionIds": [S_A]})
    partner = reg.get("a")
    assert partner is not None and partner.tenantIds == [T_A]


@pytest.mark.parametrize(
    ("partner", "words"),
    [
        ({"tenantId": "contoso.onmicrosoft.com"}, ["partners.0.tenantId", "GUID"]),
        ({"workspaces": [_ws(workspaceId="law-1")]}, ["partners.0.workspaces.0.workspaceId", "GUID"]),
        ({"workspaces": [_ws(sub=S_B)]}, ["partners.0", "not in subscriptionIds", S_B]),
        ({"workspaces": [{"subscriptionId": S_A, "workspaceId": W_A}]}, ["resourceGroup", "workspaceName"]),
        ({"workspaces": [_ws(extra=1)]}, ["partners.0.workspaces.0.extra"]),
    ],
)
def test_bad_tenancy_fields_are_named(tmp_path, partner, words):
    with pytest.raises(ConfigurationError) as err:
        _load(tmp_path, {"id": "a", "name": "A", "subscriptionIds": [S_A], **partner})
    text = str(err.value)
    assert "PARTNERS_FILE" in text and "partners.json" in text
    for word in words:
        assert word in text, text


@pytest.mark.parametrize(
    "b",
    [
        {"tenantId": T_A},  # B claims A's tenant through tenantId
        {"tenantIds": [T_B], "subscriptionIds": [S_A.upper()]},  # B claims A's subscription
        {"tenantIds": [T_B], "subscriptionIds": [S_B], "workspaces": [_ws(sub=S_B, ws_id=W_A)]},  # A's workspace
    ],
)
def test_overlapping_partners_are_refused_at_load(tmp_path, b):
    a = {"id": "a", "name": "A", "tenantIds": [T_A], "subscriptionIds": [S_A], "workspaces": [_ws()]}
    with pytest.raises(ConfigurationError) as err:
        _load(tmp_path, a, {"id": "b", "name": "B", **b})
    assert "belongs to both 'a' and 'b'" in str(err.value)
